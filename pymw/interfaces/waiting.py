"""How engines wait in `wait()` without busy-waiting, in one place.

Two shapes: engines fed by threads (a worker's reader, an MPI hub's relay) block on a
queue and take everything that piled up (`drain`); engines that must look for results
(files the assimilator drops, BOINC's query_batch, HTCondor event logs, MPI probes) poll
at a growing interval that a new result resets (`Poller`). Either way `wakeup()` from
another thread ends the wait at once, so the master can dispatch new tasks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any


def drain(events: queue.SimpleQueue, timeout: float | None) -> list[Any]:
    """Wait for one event (or the timeout), then take all that are already there."""
    try:
        taken = [events.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            taken.append(events.get_nowait())
        except queue.Empty:
            return taken


class Poller:
    """Calls `collect()` until it finds something, sleeping longer each time it does not.

    The interval starts at `first`, then grows by `growth` between `minimum` and
    `maximum`; a find or a `wakeup()` starts it over.
    """

    def __init__(
        self, first: float, maximum: float, *, growth: float = 1.5, minimum: float | None = None
    ) -> None:
        self._first, self._maximum, self._growth = first, maximum, growth
        self._minimum = first if minimum is None else minimum
        self._interval = first
        self._woken = threading.Event()

    def wait(self, collect: Callable[[], list], timeout: float | None) -> list:
        """What `collect` found, or [] on timeout or wakeup."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = collect()
            if found:
                self._interval = self._first
                return found
            delay = self._interval
            self._interval = min(self._maximum, max(self._minimum, delay * self._growth))
            if deadline is not None:
                delay = min(delay, deadline - time.monotonic())
                if delay <= 0:
                    return []
            if self.sleep(delay):
                return []

    def sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True if `wakeup()` cut it short."""
        if self._woken.wait(seconds):
            self._woken.clear()
            self._interval = self._first
            return True
        return False

    def wakeup(self) -> None:
        self._woken.set()
