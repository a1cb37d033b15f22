"""The progress bar of a batch that takes a while, shown only when stderr is a terminal.

What makes a batch worth a bar is its time, not its size: a thousand local tasks done in
a second need none, while two BOINC workunits may wait an hour for volunteers. So the
bar appears once tasks have been outstanding for BAR_DELAY seconds, however few, and is
redrawn every REFRESH_SECONDS by a thread of its own, so that its clock moves while no
task finishes. It goes away (leaving no line) when the last outstanding task is done,
before its result reaches the caller.
"""

from __future__ import annotations

import sys
import threading
import time

# Outstanding this long, a batch gets a bar; sooner done, it never shows one.
BAR_DELAY = 2.0
# How often the bar is redrawn, and so how late it may be to show a finished task.
REFRESH_SECONDS = 1.0


class ProgressBar:
    """Finished tasks over submitted ones, as a tqdm bar drawn by its own thread.

    `add_total` and `advance` are counts only (the dispatcher calls `advance` for every
    task); the bar itself is made, updated and cleared by the drawing thread, started with
    the first task and stopped by `close`.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        self._enabled = sys.stderr.isatty() if enabled is None else enabled
        self._total = 0
        self._done = 0
        # When the outstanding tasks began (time.time(), tqdm's clock), and how many were
        # done then: the bar counts this batch only.
        self._busy_since = 0.0
        self._done_before = 0
        self._bar = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._drawer: threading.Thread | None = None

    def add_total(self, count: int) -> None:
        if not self._enabled or not count:
            return
        with self._lock:
            if self._done == self._total:
                self._busy_since, self._done_before = time.time(), self._done
            self._total += count
            if self._drawer is None and not self._closed.is_set():
                self._drawer = threading.Thread(
                    target=self._draw_forever, name="pymw-progress", daemon=True
                )
                self._drawer.start()

    def advance(self, count: int) -> None:
        if not self._enabled:
            return
        with self._lock:
            self._done += count
            if self._done >= self._total:
                self._clear()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            self._clear()

    def _draw_forever(self) -> None:
        while not self._closed.wait(REFRESH_SECONDS):
            with self._lock:
                outstanding = self._done < self._total and not self._closed.is_set()
                if outstanding and time.time() - self._busy_since >= BAR_DELAY:
                    self._draw()  # (closed meanwhile, it would draw a bar nobody clears)

    def _draw(self) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                unit="task",
                desc="pymw",
                leave=False,
                file=sys.stderr,
                dynamic_ncols=True,
                delay=BAR_DELAY,  # not drawn as it is made: below, by refresh()
            )
            self._bar.start_t = self._busy_since  # its clock counts from the batch's start
        self._bar.total = self._total - self._done_before
        self._bar.n = self._done - self._done_before
        self._bar.refresh()

    def _clear(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
