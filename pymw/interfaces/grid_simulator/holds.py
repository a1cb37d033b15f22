"""What keeps a simulator's clock still while a program submits: `hold()` blocks."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class Holds:
    """The `hold()` blocks open, by kind, and the event that wakes the engine's `wait`
    when one closes or a task arrives."""

    def __init__(self) -> None:
        self.frozen = 0  # hold(): the clock stands still
        self.streaming = 0  # hold(streaming=True): it moves while no worker is idle
        self.woken = threading.Event()

    @property
    def any(self) -> bool:
        return bool(self.frozen or self.streaming)

    @contextlib.contextmanager
    def hold(self, *, streaming: bool = False) -> Iterator[None]:
        if streaming:
            self.streaming += 1
        else:
            self.frozen += 1
        try:
            yield
        finally:
            if streaming:
                self.streaming -= 1
            else:
                self.frozen -= 1
            self.woken.set()

    def sleep(self, timeout: float | None) -> None:
        """Wait for a task, a wakeup or a hold's end."""
        self.woken.wait(timeout)
        self.woken.clear()
