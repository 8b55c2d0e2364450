"""Settings read from the environment refuse values that could never work."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import ServerSettings


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
