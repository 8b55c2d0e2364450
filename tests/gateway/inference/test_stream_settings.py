"""Stream settings that would make every stream spin are refused at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import ServerSettings


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_keepalive_interval_that_is_not_positive_is_refused(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SSE_KEEPALIVE_SECONDS", value)
    with pytest.raises(ValidationError, match="GATEWAY_SSE_KEEPALIVE_SECONDS"):
        ServerSettings()
