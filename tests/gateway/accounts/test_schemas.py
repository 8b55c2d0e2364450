"""What an account's name may be, as the admin API's body decodes it: 1 to 100 characters,
a letter or digit first, then letters, digits, spaces and `._@-`; no other field."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from gateway.accounts.schemas import AccountCreate, AccountRead


def decoded(body: dict[str, object]) -> AccountCreate:
    return msgspec.json.decode(msgspec.json.encode(body), type=AccountCreate)


def refusal(body: dict[str, object]) -> str:
    with pytest.raises(msgspec.ValidationError) as refused:
        decoded(body)
    return str(refused.value)


@pytest.mark.parametrize(
    "name", ["a", "7", "Acme Corp", "ops@acme.example", "team_1.prod-eu", "x" * 100]
)
def test_a_name_of_the_allowed_characters_is_accepted(name: str) -> None:
    assert decoded({"name": name}).name == name


@pytest.mark.parametrize("name", [" acme", "-acme", ".acme", "_acme", "@acme"])
def test_a_name_must_begin_with_a_letter_or_a_digit(name: str) -> None:
    assert refusal({"name": name}).startswith("Expected `str` matching regex")


@pytest.mark.parametrize("name", ["a/b", "a:b", "a\tb", "a\x00b", "acmé", "a'b"])
def test_a_name_with_another_character_is_refused(name: str) -> None:
    assert refusal({"name": name}).startswith("Expected `str` matching regex")


def test_a_name_of_101_characters_is_refused() -> None:
    assert refusal({"name": "x" * 101}) == "Expected `str` of length <= 100 - at `$.name`"


def test_a_field_other_than_the_name_is_refused() -> None:
    assert refusal({"name": "acme", "id": "0" * 32}) == "Object contains unknown field `id`"


def test_a_body_without_a_name_is_refused() -> None:
    assert refusal({}) == "Object missing required field `name`"


def test_a_name_ending_in_a_newline_is_refused() -> None:
    assert refusal({"name": "acme\n"}).startswith("Expected `str` matching regex")


def test_an_account_is_read_with_its_id_name_and_creation_time() -> None:
    account = AccountRead(id="a" * 32, name="acme", created_at=datetime(2024, 6, 15, tzinfo=UTC))

    assert msgspec.json.decode(msgspec.json.encode(account)) == {
        "id": "a" * 32,
        "name": "acme",
        "created_at": "2024-06-15T00:00:00Z",
    }
