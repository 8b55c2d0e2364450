"""Token secrets: recognisable by their prefix, unguessable, and kept only as their hash."""

from __future__ import annotations

import hashlib
import re

from gateway.tokens.secrets import TOKEN_PREFIX, new_token, token_hash


def test_a_new_token_is_the_prefix_and_256_random_bits_url_safe() -> None:
    secret = new_token()

    assert re.fullmatch(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}", secret)


def test_no_two_new_tokens_are_alike() -> None:
    assert len({new_token() for _ in range(1000)}) == 1000


def test_a_token_is_kept_as_the_hex_sha256_of_the_whole_secret() -> None:
    secret = "gwk_" + "x" * 43

    assert token_hash(secret) == hashlib.sha256(secret.encode()).hexdigest()
    assert len(token_hash(secret)) == 64  # the column's width
    assert token_hash(secret) != token_hash(secret[:-1] + "y")
