"""Settings read from the environment refuse values that could never work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import ServerSettings, Settings


@pytest.mark.parametrize(
    "listed", ["https://app.example.com/", "app.example.com", "https://app.example.com/page"]
)
def test_a_cors_entry_that_is_not_an_origin_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, listed: str
) -> None:
    monkeypatch.setenv("GATEWAY_CORS_ALLOW_ORIGINS", f"http://localhost:3000,{listed}")

    with pytest.raises(ValidationError, match="is not an origin"):
        ServerSettings(_env_file=None)  # type: ignore[call-arg]


def test_cors_origins_are_read_as_browsers_send_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "GATEWAY_CORS_ALLOW_ORIGINS", " https://App.Example.com , http://127.0.0.1:8000,"
    )

    origins = ServerSettings(_env_file=None).cors_origins  # type: ignore[call-arg]

    assert origins == {"https://app.example.com", "http://127.0.0.1:8000"}


def test_no_origin_is_allowed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_CORS_ALLOW_ORIGINS", raising=False)

    assert ServerSettings(_env_file=None).cors_origins == frozenset()  # type: ignore[call-arg]


WEAK_TOKENS = ["a" * 32, "ab" * 16, "short-but-random-Xq7"]
STRONG_TOKEN = "kq0Zr8w1X_c2b9V-3mTfY7uLh4sJdP6eNgA5oRiW"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("token", WEAK_TOKENS)
def test_a_weak_admin_token_is_refused_in_production(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", token)

    with pytest.raises(ValidationError, match="GATEWAY_ADMIN_TOKEN is too weak in production"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("token", WEAK_TOKENS)
def test_a_weak_admin_token_is_refused_in_development_beyond_loopback(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("GATEWAY_HOST", ALL_INTERFACES)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", token)

    with pytest.raises(ValidationError, match=r"too weak when listening on 0\.0\.0\.0"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_any_admin_token_is_accepted_in_development_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GATEWAY_HOST", "127.0.0.1")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "a")

    assert Settings(_env_file=None).security.admin_token == "a"  # type: ignore[call-arg]


def test_a_random_admin_token_is_accepted_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_HOST", ALL_INTERFACES)
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", STRONG_TOKEN)

    assert Settings(_env_file=None).security.admin_token == STRONG_TOKEN  # type: ignore[call-arg]


def test_a_refused_admin_token_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "SECRET-" + "a" * 40
    monkeypatch.setenv("GATEWAY_ENV", "production")
    monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", secret)

    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]

    assert "SECRET" not in str(refused.value)
    assert "aaaa" not in str(refused.value)


@pytest.mark.slow  # the gateway CLI in a process
def test_gateway_serve_beyond_loopback_with_a_weak_token_exits_with_one_line(
    tmp_path: Path,
) -> None:
    secret = "SECRET-" + "b" * 40
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--host", ALL_INTERFACES, "--port", "1"],
        env={**os.environ, "GATEWAY_ADMIN_TOKEN": secret, "GATEWAY_HOST": "127.0.0.1"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.startswith(
        "gateway: GATEWAY_ADMIN_TOKEN is too weak when listening on 0.0.0.0"
    )
    assert "SECRET" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
