"""Where OpenAI's API is served, and so where every answer, errors included, is OpenAI's:
`/v1`, where the token alone names the account, and the account's `…/ai/v1` (as Workers AI
serves it)."""

from __future__ import annotations

import re

ACCOUNT_BASE_URL = "/client/v4/accounts/{account_id:str}/ai/v1"
SHORT_BASE_URL = "/v1"

_UNDER_A_BASE_URL = re.compile(r"(?:/client/v4/accounts/[^/]+/ai)?/v1(?:/|$)")


def is_openai_path(path: str) -> bool:
    """Whether `path` (as routing sees it) lies under a base URL, served or not: an unknown
    path there (`/v1/responses`) is still an OpenAI client's request."""
    return _UNDER_A_BASE_URL.match(path) is not None
