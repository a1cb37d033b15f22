"""A small progress display: one numbered line per build step, with its duration."""

import contextlib
import sys
import time


class StepProgress:
    def __init__(self, total: int, stream=None):
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.started = time.monotonic()

    @contextlib.contextmanager
    def step(self, title: str):
        self.done += 1
        prefix = f"[{self.done}/{self.total}]"
        self.stream.write(f"{prefix} {title} ...\n")
        self.stream.flush()
        began = time.monotonic()
        yield self
        self.stream.write(f"{prefix} {title}: done in {time.monotonic() - began:.1f} s\n")
        self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(f"      {message}\n")
        self.stream.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self.started
