"""Stop strings end the text wherever the pieces split them."""

from __future__ import annotations

import pytest

from gateway.inference.stop_strings import StopStrings


def feed_all(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopStrings(stops)
    text = "".join(matcher.feed(piece) for piece in pieces)
    if not matcher.matched:
        text += matcher.flush()
    return text, matcher.matched


def test_a_stop_string_split_over_pieces_ends_the_text_before_it() -> None:
    assert feed_all(["END"], ["once upon E", "N", "D and more"]) == ("once upon ", True)


def test_the_earliest_of_several_stop_strings_wins() -> None:
    assert feed_all(["world", "lo"], ["hello world"]) == ("hel", True)


def test_text_that_only_began_a_stop_string_is_released_when_it_cannot_complete() -> None:
    matcher = StopStrings(["ENDS"])
    assert matcher.feed("the EN") == "the "
    assert matcher.feed("D") == ""
    assert matcher.feed("!") == "END!"


def test_a_generation_that_ends_inside_a_possible_stop_string_keeps_that_text() -> None:
    assert feed_all(["</answer>"], ["42 </ans"]) == ("42 </ans", False)


def test_nothing_is_released_after_a_match() -> None:
    matcher = StopStrings(["x"])
    assert matcher.feed("abxcd") == "ab"
    assert matcher.feed("more") == ""
    assert matcher.flush() == ""


def test_a_stop_string_at_the_very_start_gives_no_text() -> None:
    assert feed_all(["Hi"], ["Hi there"]) == ("", True)


def test_an_empty_stop_string_is_refused() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        StopStrings(["ok", ""])
