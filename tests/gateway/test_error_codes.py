"""The error registry is the one source of error codes: what the code raises is in it, and
the API users' error table (docs/api/errors.md) is it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from gateway.error_codes import REGISTRY, ErrorCode, markdown_table, openai_names, registered

ROOT = Path(__file__).resolve().parents[2]


def _raised_pairs() -> list[tuple[str, int, str]]:
    """(file, status, code name) of every `ApiError(<status literal>, ErrorCode.<name>, …)`."""
    found = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ApiError"
                and len(node.args) >= 2
            ):
                continue
            status, code = node.args[0], node.args[1]
            if (
                isinstance(status, ast.Constant)
                and isinstance(code, ast.Attribute)
                and isinstance(code.value, ast.Name)
                and code.value.id == "ErrorCode"
            ):
                found.append((str(path.relative_to(ROOT)), status.value, code.attr))
    return found


def test_every_error_the_gateway_raises_with_a_literal_status_is_registered() -> None:
    pairs = _raised_pairs()
    assert len(pairs) > 20, "the scan should find the gateway's errors"
    unregistered = [pair for pair in pairs if registered(pair[1], ErrorCode[pair[2]]) is None]
    assert unregistered == []


def test_no_module_defines_an_error_code_of_its_own() -> None:
    names = {code.name for code in ErrorCode}
    offenders = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        if path.name == "error_codes.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_every_envelope_error_takes_its_code_from_the_registry() -> None:
    """`ErrorDetail(<code>, …)` with a literal or a constant of the module's own (as `/readyz`
    once had: 7010, in no table) would answer a code the docs do not list."""
    offenders = []
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ErrorDetail"
                and node.args
                and (
                    isinstance(node.args[0], ast.Constant)
                    or (isinstance(node.args[0], ast.Name) and node.args[0].id.isupper())
                )
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_each_status_and_code_is_registered_once() -> None:
    pairs = [(kind.status, kind.code) for kind in REGISTRY]
    assert len(pairs) == len(set(pairs))


def test_the_documented_error_table_is_the_registry() -> None:
    assert markdown_table() in (ROOT / "docs" / "api" / "errors.md").read_text()


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (
            400,
            ErrorCode.CONTEXT_WINDOW_EXCEEDED,
            ("invalid_request_error", "context_length_exceeded"),
        ),
        (401, ErrorCode.AUTHENTICATION, ("invalid_request_error", "invalid_api_key")),
        (403, ErrorCode.AUTHENTICATION, ("permission_error", None)),
        (429, ErrorCode.QUOTA_EXCEEDED, ("insufficient_quota", "insufficient_quota")),
        (503, ErrorCode.BACKEND_UNAVAILABLE, ("service_unavailable", "backend_unavailable")),
    ],
)
def test_openai_names_come_from_the_registry(
    status: int, code: ErrorCode, expected: tuple[str, str | None]
) -> None:
    assert openai_names(status, code) == expected


def test_a_status_the_registry_does_not_list_gets_its_class_of_type() -> None:
    assert openai_names(418, ErrorCode.BAD_INPUT) == ("invalid_request_error", None)
    assert openai_names(504, ErrorCode.INTERNAL) == ("server_error", None)
