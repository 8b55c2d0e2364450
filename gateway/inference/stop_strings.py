"""OpenAI's `stop`: the text ends before the first stop string, wherever tokens split it.

Text arrives in pieces that need not align with a stop string: a stop string may begin in
one piece and end several pieces later. So the end of what has arrived is held back while it
could still be the start of a stop string, and released once it cannot.
"""

from __future__ import annotations

from collections.abc import Sequence


class StopStrings:
    def __init__(self, stops: Sequence[str]) -> None:
        if not stops or not all(stops):
            raise ValueError("stop strings must be non-empty")
        self._stops = tuple(stops)
        self._held = ""
        self.matched = False

    def feed(self, text: str) -> str:
        """The text that is now certain to come before any stop string; after a match, the
        text up to it, and `matched` is set (nothing is released after that)."""
        if self.matched:
            return ""
        window = self._held + text
        found = [index for index in map(window.find, self._stops) if index >= 0]
        if found:
            self.matched = True
            self._held = ""
            return window[: min(found)]
        keep = self._longest_open_start(window)
        self._held = window[len(window) - keep :]
        return window[: len(window) - keep]

    def flush(self) -> str:
        """The text held back at the end of the generation: no stop string completed it."""
        held, self._held = self._held, ""
        return held

    def _longest_open_start(self, window: str) -> int:
        """The longest end of `window` that begins some stop string without completing it.

        No earlier position can begin a match: a stop string starting there would make a
        longer end of the window a beginning of it."""
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, len(window)), longest, -1):
                if window.endswith(stop[:length]):
                    longest = length
                    break
        return longest
