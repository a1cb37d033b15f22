"""A worker exits when its master dies, whatever it was doing.

Two ways, since each alone can miss one. Everywhere, the pipe from the master: its end
means the master is gone (or done with this worker), so the worker stops its task and
exits at once instead of finishing work nobody will collect (`abandon`). On Linux, also
the kernel: `prctl(PR_SET_PDEATHSIG)` signals the worker (SIGUSR1) when its parent dies,
for a worker whose pipe reader cannot run. That signal also comes when only the thread
that started the worker ends, so then the worker exits only if its parent is really gone.
SIGTERM (the master stopping a busy worker) always stops it.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Exit status of a worker whose master went away.
EXIT_MASTER_GONE = 3


def abandon(stop: Callable[[], None], status: int = EXIT_MASTER_GONE) -> None:
    """Stop what runs for the master (`stop`), then exit this process at once: no
    thread, task or atexit handler is waited for."""
    try:
        stop()
    finally:
        os._exit(status)


def exit_with_parent(parent_pid: int, stop: Callable[[], None]) -> None:
    """Exit (after `stop`) on SIGTERM, or when process `parent_pid` dies (Linux).

    Call from the main thread, early: a parent that died before this call is noticed too.
    """

    def on_signal(signum: int, _frame: object) -> None:
        if signum == signal.SIGTERM or os.getppid() != parent_pid:
            abandon(stop)

    signal.signal(signal.SIGTERM, on_signal)
    if sys.platform.startswith("linux"):
        _parent_death_signal(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, on_signal)
    if os.getppid() != parent_pid:
        abandon(stop)


def _parent_death_signal(signum: int) -> None:
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    except (OSError, AttributeError):  # no prctl here: the pipe alone tells
        pass
