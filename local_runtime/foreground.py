"""How this package's commands run in a terminal: stopped by Ctrl-C or SIGTERM alike, and
reporting through `logging` on standard error."""

from __future__ import annotations

import logging
import signal


def interrupt_on_sigint_and_sigterm() -> None:
    """Both raise KeyboardInterrupt, so a server run in the foreground stops cleanly however
    it is told to: SIGTERM (systemd, a supervisor) as Ctrl-C, and SIGINT even when this
    process was started with it ignored (as a script's background job is)."""
    for ending in (signal.SIGINT, signal.SIGTERM):
        signal.signal(ending, signal.default_int_handler)


def report_to_stderr() -> None:
    """This package's log records on standard error, one line each, from INFO up; not
    passed on to the root logger, which the gateway's app configures for its own records."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    package = logging.getLogger("local_runtime")
    package.handlers = [handler]
    package.setLevel(logging.INFO)
    package.propagate = False
