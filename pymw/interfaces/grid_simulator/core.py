"""Simulated time, the event heap and the idle workers: the simulator without PyMW.

Heap entries are plain tuples `(time, kind, sequence, worker number)`; what a worker is
running lives in per-worker arrays, not in an object per event. A job's event is current
while its worker's `running` slot still holds the event's sequence number, so stopping a
job is one store, and a stale entry is dropped when it comes up.
Ties are broken by kind, then by the order events were made: deterministic runs.
"""

from __future__ import annotations

import heapq
import itertools
import math
from array import array
from collections.abc import Sequence

from .workers import SimWorker

# Event kinds, ordered so that at one instant finished work frees workers before idle
# workers are handed new work.
FINISH, READY, LEFT = 0, 1, 2
# A worker's `running` slot: its job's event sequence number, or one of these.
NOT_RUNNING, RUNNING_WITHOUT_EVENT = -1, -2


class EventCore:
    """`start` puts work on an idle worker; `advance` moves the clock to the next instant
    with events and returns what ended then."""

    def __init__(self) -> None:
        self.time = 0.0
        self.workers: list[SimWorker] = []
        self.idle: dict[SimWorker, None] = {}  # insertion-ordered: longest idle first
        self.workers_left = 0
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = itertools.count()
        self._running = array("q")  # per worker: the sequence number of its job's event
        self._live = 0  # events not made stale by `stop`
        self.busy = 0  # workers running a job

    @property
    def pending(self) -> bool:
        return self._live > 0

    def add_worker(self, worker: SimWorker) -> None:
        worker.number = len(self.workers)
        self.workers.append(worker)
        self._running.append(NOT_RUNNING)
        self._make_ready(worker)

    def start(self, copies: Sequence[SimWorker], cpu_seconds: Sequence[float]) -> int:
        """Run the copies of one job from now, each on its own idle worker; the index of
        the copy that will finish (-1 if none will), the only one whose result counts.

        Only the copy that ends first gets a finish event; the others are stopped then
        (`stop`), so they need none. A copy whose worker leaves the grid before that gets
        its leaving event. Half the heap work of a 2-replica batch, with the same order.
        """
        now, idle, running = self.time, self.idle, self._running
        if len(copies) == 1:  # no replicas: no plans to compare
            (worker,), (seconds,) = copies, cpu_seconds
            del idle[worker]
            self.busy += 1
            finish = worker.finish_time(now, seconds) if seconds else now
            if finish < math.inf:
                self._push(finish, FINISH, worker)
                return 0
            self._push(max(now, worker.trace_end), LEFT, worker)
            return -1
        plans = []
        for worker, seconds in zip(copies, cpu_seconds, strict=True):
            del idle[worker]
            running[worker.number] = RUNNING_WITHOUT_EVENT
            finish = worker.finish_time(now, seconds) if seconds else now
            if finish < math.inf:
                plans.append((finish, FINISH, worker))
            else:
                plans.append((max(now, worker.trace_end), LEFT, worker))
        self.busy += len(plans)
        first = min((when for when, kind, _ in plans if kind == FINISH), default=math.inf)
        winner = -1
        for index, (when, kind, worker) in enumerate(plans):
            if kind == LEFT and when < first:
                self._push(when, LEFT, worker)
            elif kind == FINISH and when == first:
                self._push(when, FINISH, worker)
                first = -math.inf  # one winner: the first copy among equals, as before
                winner = index
        return winner

    def _push(self, when: float, kind: int, worker: SimWorker) -> None:
        sequence = next(self._sequence)
        self._running[worker.number] = sequence
        heapq.heappush(self._events, (when, kind, sequence, worker.number))
        self._live += 1

    def stop(self, worker: SimWorker) -> None:
        """Stop the worker's job now (unless it already ended): it is free again."""
        state = self._running[worker.number]
        if state == NOT_RUNNING:
            return
        if state != RUNNING_WITHOUT_EVENT:
            self._live -= 1  # its event is stale now
        self._running[worker.number] = NOT_RUNNING
        self.busy -= 1
        self._make_ready(worker)

    def advance(self) -> list[tuple[int, SimWorker]]:
        """Pop every event of the next instant: (kind, worker), READYs applied."""
        events, running, workers = self._events, self._running, self.workers
        while events and events[0][1] != READY and running[events[0][3]] != events[0][2]:
            heapq.heappop(events)  # stopped replicas do not move time
        if not events:
            return []
        popped: list[tuple[int, SimWorker]] = []
        self.time = now = events[0][0]
        while events and events[0][0] == now:
            _, kind, sequence, number = heapq.heappop(events)
            worker = workers[number]
            if kind == READY:
                self._live -= 1
                self.idle[worker] = None
                continue
            if running[number] != sequence:
                continue  # stopped
            running[number] = NOT_RUNNING
            self._live -= 1
            self.busy -= 1
            if kind == FINISH:
                self._make_ready(worker)
            else:
                self.workers_left += 1
            popped.append((kind, worker))
        return popped

    def _make_ready(self, worker: SimWorker) -> None:
        ready = worker.available_from(self.time)
        if ready == self.time:
            self.idle[worker] = None
        elif ready < math.inf:
            heapq.heappush(self._events, (ready, READY, next(self._sequence), worker.number))
            self._live += 1
        else:
            self.workers_left += 1
