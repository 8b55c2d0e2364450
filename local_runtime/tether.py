"""Child processes that end with this one, however it ends (SIGTERM, SIGINT, SIGKILL, a crash).

The kernel's parent-death signal (`PR_SET_PDEATHSIG`) does it, armed in the child between
fork and exec. `subprocess`'s `preexec_fn` is unsafe once threads exist, so a tiny isolated
interpreter arms it and execs the real program: the signal survives exec and the pid stays
the child's. The kernel sends it when the *thread* that forked the child ends, not the
process, so every fork runs on one thread that lasts as long as the process: a child started
again from a watcher thread or a worker pool is tied to the process, not to that thread.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

_ARM_AND_EXEC = """\
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[2])) != 0:  # PR_SET_PDEATHSIG
    sys.exit("prctl(PR_SET_PDEATHSIG): " + os.strerror(ctypes.get_errno()))
if os.getppid() != int(sys.argv[1]):  # the parent died before the signal was armed
    sys.exit(1)
os.execvp(sys.argv[3], sys.argv[3:])
"""


def tethered_command(
    command: Sequence[str], death_signal: signal.Signals = signal.SIGTERM
) -> list[str]:
    """`command` run so that it receives `death_signal` when this process ends."""
    arm = ["-I", "-S", "-c", _ARM_AND_EXEC, str(os.getpid()), str(int(death_signal))]
    return [sys.executable, *arm, *command]


@functools.cache
def _forking_thread(pid: int) -> ThreadPoolExecutor:
    """One thread per process (a forked child gets its own); it ends only at interpreter exit."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"tethered-fork-{pid}")


def popen_tethered(
    command: Sequence[str],
    death_signal: signal.Signals = signal.SIGTERM,
    **options: Any,
) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(command, **options)` for a child that ends when this process does."""
    tethered = tethered_command(command, death_signal)

    def popen() -> subprocess.Popen[bytes]:
        return subprocess.Popen(tethered, **options)

    return _forking_thread(os.getpid()).submit(popen).result()
