"""Simulated workers: a speed and an availability trace each, and the replica sets
that run copies of one task."""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...errors import UserError

Availability = Sequence[tuple[float, float]]
ALWAYS_AVAILABLE: Availability = ((math.inf, 1.0),)


class SimWorker:
    """A simulated worker: a speed (work units per CPU-second) and an availability trace.

    The trace is `(length, fraction)` intervals: for `length` seconds the worker runs at
    `fraction` of its speed (0 = unavailable). `cycle=True` repeats the trace forever
    (e.g. on 100 s, off 100 s); otherwise the worker leaves the grid when its trace ends.
    """

    __slots__ = (
        "_always",
        "_fractions",
        "_index",
        "_lengths",
        "_start",
        "cycle",
        "name",
        "number",
        "speed",
    )

    def __init__(
        self,
        name: str,
        speed: float,
        availability: Availability = ALWAYS_AVAILABLE,
        *,
        cycle: bool = False,
    ) -> None:
        if speed <= 0:
            raise UserError(f"worker {name}: speed must be positive, got {speed}")
        if not availability or any(
            length <= 0 or not 0 <= fraction <= 1 for length, fraction in availability
        ):
            raise UserError(
                f"worker {name}: availability must be (length > 0, fraction 0..1) intervals"
            )
        self.name, self.speed, self.cycle = name, float(speed), cycle
        self.number = -1  # its place in the event core, set when the core adopts it
        self._lengths = array("d", (length for length, _ in availability))
        self._fractions = array("d", (fraction for _, fraction in availability))
        self._index, self._start = 0, 0.0  # the interval the worker's clock is in
        # A dedicated machine (the common model) needs no trace walking at all.
        self._always = list(self._fractions) == [1.0] and self._lengths[0] == math.inf

    def __repr__(self) -> str:
        return f"<SimWorker {self.name} speed={self.speed:g}>"

    def _advance(self) -> bool:
        """Move to the next interval; False when the trace has ended."""
        self._start += self._lengths[self._index]
        self._index += 1
        if self._index == len(self._lengths):
            if not self.cycle:
                return False
            self._index = 0
        return True

    def _seek(self, time: float) -> bool:
        if self._index == len(self._lengths):
            return False  # the trace has ended
        while self._start + self._lengths[self._index] <= time:
            if not self._advance():
                return False
        return True

    @property
    def trace_end(self) -> float:
        """Where the worker's clock stopped when it left the grid."""
        return self._start

    def available_from(self, time: float) -> float:
        """The first moment at or after `time` when the worker runs; inf if never."""
        if self._always:
            return time
        if not self._seek(time):
            return math.inf
        while self._fractions[self._index] == 0:
            if not self._advance():
                return math.inf
        return max(time, self._start)

    def finish_time(self, start: float, cpu_seconds: float) -> float:
        """When `cpu_seconds` of work started at `start` ends; inf if the worker leaves."""
        if self._always:
            return start + cpu_seconds
        if not self._seek(start):
            return math.inf
        time, remaining = start, cpu_seconds
        while True:
            rate = self._fractions[self._index]
            end = self._start + self._lengths[self._index]
            if rate > 0 and (end - time) * rate >= remaining:
                return time + remaining / rate
            remaining -= (end - time) * rate
            if not self._advance():
                return math.inf
            time = self._start


@dataclass(eq=False)
class ReplicaSet:
    """The k workers that run copies of one task (replication policy)."""

    workers: tuple[SimWorker, ...]

    @property
    def speed(self) -> float:
        return max(worker.speed for worker in self.workers)


def generate_workers(
    num_workers: int,
    speed_func: Callable[[int], float],
    avail_func: Callable[[int], Availability],
    *,
    cycle: bool = False,
) -> list[SimWorker]:
    """Workers W0..Wn-1 with `speed_func(i)` and availability `avail_func(i)`."""
    return [
        SimWorker(f"W{index}", speed_func(index), avail_func(index), cycle=cycle)
        for index in range(num_workers)
    ]
