"""schemathesis against the gateway's own OpenAPI schema (`GET /schema/openapi.json`): every
operation, with data that fits the schema and data that breaks it, with valid and invalid
tokens. Never a 5xx, and every error in the envelope (in OpenAI's format on OpenAI's paths).

schemathesis' pytest integration (`schemathesis.pytest.from_fixture`) fails under pytest 9, so
each operation's hypothesis strategy is driven here; the failures are collected, each with the
curl command that reproduces it, and reported together. The fuzz has a gateway and database of
its own, and its runs generate a few tokens each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, GenerationMode, Response
from schemathesis.core.result import Err

from gateway.workers_ai.schemas import TextGenerationRequest
from local_runtime.triton_server import TritonServer
from tests.accounting import INT8, bearer, new_account, run
from tests.gateway_fixtures import GatewayProcess, start_gateway

pytestmark = pytest.mark.triton
Operation: TypeAlias = APIOperation[Any, Any, Any, Any]
AnyCase: TypeAlias = Case[Any]

FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
EXAMPLES = 12
"""Cases per operation and generation mode with valid tokens (17 operations: ~400 requests)."""
EXAMPLES_REFUSED = 4
"""The same with each invalid token: these are refused before the handlers, whatever the
body, so a few cases per operation show it."""
SHORT = 8
"""The `max_tokens` of fuzzed runs that would generate more."""
LONGEST_OUTPUT = 2500
"""The catalog's largest output limit: a larger `max_tokens` stays, to be refused."""
BOTH = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
RUN_FIELDS = frozenset(TextGenerationRequest.__struct_fields__)


@dataclass
class Target:
    """The accounts the fuzzed requests act on."""

    account_id: str
    """The account API's cases (its token budget guards how much the fuzz generates)."""
    token: str
    """One of its tokens."""
    admin_account_id: str
    """The admin API's cases (the fuzz rewrites its limits)."""


@dataclass
class Outcome:
    sent: Counter[str] = field(default_factory=Counter)
    """Requests per operation."""
    failures: list[str] = field(default_factory=list)
    """What failed, each with the curl command that reproduces it."""


@pytest.fixture(scope="module")
def fuzzed_gateway(
    database_factory: Callable[[str], str],
    triton: TritonServer,
    cpu_model_repository: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GatewayProcess]:
    """A gateway and database of the fuzz's own: it creates accounts, rewrites limits and sends
    hostile names that the other suites' gateway should not have to live with. On PostgreSQL,
    the stricter of the two databases (it refuses NUL bytes, for one); `test_abuse.py` sends
    what the two store differently to both."""
    process = start_gateway(
        {
            "DATABASE_URL": database_factory("postgresql"),
            "TRITON_GRPC_URL": triton.grpc_url,
            "GATEWAY_MODEL_REPOSITORY": str(cpu_model_repository),
        },
        tmp_path_factory.mktemp("gateway-fuzz") / "gateway.log",
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def target(fuzzed_gateway: GatewayProcess) -> Target:
    account_id, token = new_account(fuzzed_gateway, tokens_per_minute=5000)
    return Target(account_id, token, fuzzed_gateway.create_account())


@pytest.fixture(scope="module")
def schema(fuzzed_gateway: GatewayProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{fuzzed_gateway.base_url}/schema/openapi.json")


def operations(schema: schemathesis.BaseSchema) -> list[Operation]:
    found: list[Operation] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise AssertionError(f"the schema describes an operation badly: {result.err()}")
        found.append(result.ok())
    return found


def is_admin(case: AnyCase) -> bool:
    path: str = case.operation.path
    return path.startswith("/admin/")


def needs_a_token(case: AnyCase) -> bool:
    path: str = case.operation.path
    return path.startswith(("/admin/", "/client/", "/v1/"))


def is_openai(case: AnyCase) -> bool:
    """OpenAI's API answers errors in OpenAI's format, not in the envelope."""
    path: str = case.operation.path
    return path.startswith("/v1/") or "/ai/v1/" in path


def generates(case: AnyCase) -> bool:
    path: str = case.operation.path
    return ("{model}" in path and "/run/" in path) or path.endswith("completions")


def cases(operation: Operation, mode: GenerationMode, target: Target) -> st.SearchStrategy[AnyCase]:
    """Cases on a real account (and, for runs, a real model), which get past the lookups to the
    handlers, and cases whose path is generated too."""
    fixed: dict[str, str] = {}
    if "{account_id}" in operation.path:
        admin = operation.path.startswith("/admin/")
        fixed["account_id"] = target.admin_account_id if admin else target.account_id
    if "{model}" in operation.path:
        fixed["model"] = INT8
    generated = operation.as_strategy(mode)
    if not fixed:
        return generated
    return st.one_of(operation.as_strategy(mode, path_parameters=fixed), generated)


def adapted(case: AnyCase) -> AnyCase:
    """A run generates at most SHORT tokens (a `max_tokens` over every model's limit stays, to
    be refused). A case that fits the schema gets what the generated schema cannot say: a run
    body has only the documented fields and exactly one of `prompt` and `messages` (the gateway
    refuses unknown fields), and a query parameter that is null is left out (`since`, `until`
    are documented as required)."""
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if positive and isinstance(case.query, dict):
        case.query = {name: value for name, value in case.query.items() if value != "null"}
    body = case.body
    if not generates(case) or not isinstance(body, dict):
        return case
    if is_openai(case):
        if positive:
            body["model"] = INT8
        if "max_tokens" not in body and "max_completion_tokens" not in body:
            body["max_tokens"] = SHORT
    elif positive:
        for name in set(body) - RUN_FIELDS:
            del body[name]
        if "prompt" in body:
            body.pop("messages", None)
        elif "messages" not in body:
            body["prompt"] = "Hello"
    for name in ("max_tokens", "max_completion_tokens"):
        max_tokens = body.get(name, LONGEST_OUTPUT)
        if type(max_tokens) is int and SHORT < max_tokens <= LONGEST_OUTPUT:
            body[name] = SHORT
    return case


def for_examples(
    strategy: st.SearchStrategy[AnyCase], examples: int, send: Callable[[AnyCase], None]
) -> None:
    @given(case=strategy)
    @settings(FUZZ, max_examples=examples)
    def example(case: AnyCase) -> None:
        send(case)

    example()


def fuzz(
    gateway: GatewayProcess,
    schema: schemathesis.BaseSchema,
    target: Target,
    token_for: Callable[[AnyCase], str],
    check: Callable[[AnyCase, Response], None],
    examples: int,
) -> Outcome:
    """`examples` generated cases of every operation with data that fits the schema, as many
    with data that breaks it, each sent with the token `token_for` picks; `check` judges each
    response."""
    outcome = Outcome()

    def send(case: AnyCase) -> None:
        case = adapted(case)
        response = case.call(base_url=gateway.base_url, headers=bearer(token_for(case)), timeout=30)
        outcome.sent[case.operation.label] += 1
        try:
            check(case, response)
        except AssertionError as error:
            curl = case.as_curl_command(base_url=gateway.base_url)
            outcome.failures.append(f"{case.operation.label}: {error}\n    {curl}")

    for operation in operations(schema):
        for mode in BOTH:
            for_examples(cases(operation, mode, target), examples, send)
    return outcome


def assert_in_the_envelope(response: Response) -> None:
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code}, not JSON: {response.text[:300]}") from None
    assert isinstance(body, dict), body
    assert (body.get("result"), body.get("success"), body.get("messages")) == (None, False, []), (
        body
    )
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    for error in errors:
        assert isinstance(error, dict), body
        assert set(error) == {"code", "message"}, body
        assert type(error["code"]) is int, body
        assert isinstance(error["message"], str), body


def assert_in_openais_format(response: Response) -> None:
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"{response.status_code}, not JSON: {response.text[:300]}") from None
    assert isinstance(body, dict), body
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) == {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str), body
    assert isinstance(error["type"], str), body


def assert_no_server_error_and_errors_in_the_envelope(case: AnyCase, response: Response) -> None:
    """Errors in the envelope, or in OpenAI's format on OpenAI's paths."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        if is_openai(case):
            assert_in_openais_format(response)
        else:
            assert_in_the_envelope(response)


def test_fuzzed_requests_with_valid_tokens_never_fail_the_server(
    fuzzed_gateway: GatewayProcess, schema: schemathesis.BaseSchema, target: Target
) -> None:
    admin_token = fuzzed_gateway.admin_headers["Authorization"].removeprefix("Bearer ")

    def token_for(case: AnyCase) -> str:
        return admin_token if is_admin(case) else target.token

    outcome = fuzz(
        fuzzed_gateway,
        schema,
        target,
        token_for,
        assert_no_server_error_and_errors_in_the_envelope,
        EXAMPLES,
    )
    assert outcome.failures == []
    assert set(outcome.sent) == {operation.label for operation in operations(schema)}


@pytest.fixture(scope="module")
def invalid_tokens(fuzzed_gateway: GatewayProcess, target: Target) -> dict[str, str]:
    revoked = fuzzed_gateway.create_token(target.account_id)
    with fuzzed_gateway.client() as client:
        client.delete(
            f"/admin/v1/accounts/{target.account_id}/tokens/{revoked['id']}",
            headers=fuzzed_gateway.admin_headers,
        ).raise_for_status()
    return {
        "unknown": "gwk_not-a-real-token",
        "malformed": 'not a token, "quoted" and \' spaced',
        "revoked": str(revoked["token"]),
        "another account's": new_account(fuzzed_gateway)[1],
    }


@pytest.mark.parametrize("kind", ["unknown", "malformed", "revoked", "another account's"])
def test_fuzzed_requests_with_an_invalid_token_are_refused_in_the_envelope(
    fuzzed_gateway: GatewayProcess,
    schema: schemathesis.BaseSchema,
    target: Target,
    invalid_tokens: dict[str, str],
    kind: str,
) -> None:
    """Every operation that needs a token answers a 4xx, never a 2xx; the admin API takes no
    account token. (Under `/v1` and `/client/v4/user` the token names its own account: another
    account's token is a valid token there.)"""

    def refused(case: AnyCase, response: Response) -> None:
        assert_no_server_error_and_errors_in_the_envelope(case, response)
        valid_here = kind == "another account's" and case.operation.path.startswith(
            ("/v1/", "/client/v4/user/")
        )
        if needs_a_token(case) and not valid_here:
            assert response.status_code >= 400, f"{response.status_code}: {response.text[:300]}"

    outcome = fuzz(
        fuzzed_gateway, schema, target, lambda _: invalid_tokens[kind], refused, EXAMPLES_REFUSED
    )
    assert outcome.failures == []
    assert set(outcome.sent) == {operation.label for operation in operations(schema)}


def test_the_gateway_still_serves_after_the_fuzzing(fuzzed_gateway: GatewayProcess) -> None:
    reply = run(fuzzed_gateway, new_account(fuzzed_gateway), {"prompt": "Hi", "max_tokens": 2})
    assert reply.status_code == 200, reply.text
    assert fuzzed_gateway.process.poll() is None
