"""What a token's name may be, as the admin API's body decodes it: 1 to 100 characters of any
text without control characters; and an optional expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from gateway.tokens.schemas import TokenCreate


def decoded(body: dict[str, object]) -> TokenCreate:
    return msgspec.json.decode(msgspec.json.encode(body), type=TokenCreate)


def refusal(body: dict[str, object]) -> str:
    with pytest.raises(msgspec.ValidationError) as refused:
        decoded(body)
    return str(refused.value)


@pytest.mark.parametrize("name", ["ci", "Déploiement — prod 🚀", " spaced ", "x" * 100])
def test_any_text_without_control_characters_is_a_name(name: str) -> None:
    assert decoded({"name": name}).name == name


@pytest.mark.parametrize("name", ["a\tb", "a\rb", "a\nb", "\x1b[31mred", "a\x7f", "\n"])
def test_a_name_with_a_control_character_is_refused(name: str) -> None:
    assert refusal({"name": name}).startswith("Expected `str` matching regex")


def test_a_name_ending_in_a_newline_is_refused() -> None:
    assert refusal({"name": "ci\n"}).startswith("Expected `str` matching regex")


def test_without_an_expiry_a_token_never_expires() -> None:
    assert decoded({"name": "ci"}).expires_at is None


def test_an_expiry_keeps_its_time_zone() -> None:
    expiry = decoded({"name": "ci", "expires_at": "2030-01-01T12:00:00+02:00"}).expires_at

    assert expiry == datetime(2030, 1, 1, 10, 0, tzinfo=UTC)


def test_a_field_other_than_the_name_and_expiry_is_refused() -> None:
    assert refusal({"name": "ci", "scopes": []}) == "Object contains unknown field `scopes`"
