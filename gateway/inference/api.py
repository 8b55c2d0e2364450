"""The APIs a run can come by."""

from __future__ import annotations

from enum import StrEnum


class Api(StrEnum):
    """The `api` label of the request metric."""

    WORKERS_AI = "workers_ai"
    OPENAI = "openai"
