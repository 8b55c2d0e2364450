"""The relay's cancellation polling, which costs a round trip to the server per question."""

from __future__ import annotations

from build_engines.text_models.text_stream import CancellationCheck


class CountingSink:
    def __init__(self) -> None:
        self.questions = 0

    def is_cancelled(self) -> bool:
        self.questions += 1
        return False

    def send_text(self, text: str, *, final: bool) -> None: ...

    def send_final(self) -> None: ...

    def send_error(self, message: str, code: int | None = None) -> None: ...

    def send_cancelled(self) -> None: ...


def test_cancellation_is_asked_at_most_once_per_period() -> None:
    now = [0.0]
    sink = CountingSink()
    check = CancellationCheck(sink, period_s=0.1, clock=lambda: now[0])
    for step in range(10):
        now[0] = step * 0.025
        check()
    assert sink.questions == 3


def test_cancellation_is_asked_at_the_first_check() -> None:
    sink = CountingSink()
    CancellationCheck(sink, period_s=10.0, clock=lambda: 0.0)()
    assert sink.questions == 1
