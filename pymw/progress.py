"""The progress bar on long batches, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import threading

# Batches shorter than this many tasks finish before a bar is worth drawing.
MIN_TASKS_FOR_BAR = 20


class ProgressBar:
    """A tqdm bar over finished/submitted tasks, created lazily on the first long batch."""

    def __init__(self, enabled: bool | None = None) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._total = 0
        self._bar = None
        self._lock = threading.Lock()

    def add_total(self, count: int) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._total += count
            if self._bar is None and self._total >= MIN_TASKS_FOR_BAR:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=self._total,
                    unit="task",
                    desc="pymw",
                    leave=False,
                    file=sys.stderr,
                    dynamic_ncols=True,
                )
            elif self._bar is not None:
                self._bar.total = self._total  # drawn on the next update, not per task

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None
