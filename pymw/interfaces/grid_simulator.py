"""The grid simulator: try scheduling policies on a simulated desktop grid before deploying.

A task function here does not compute a result: called with a simulated worker (and the
task's arguments) it returns how many CPU-seconds the task takes on that worker, as in
PyMW 0.4. The simulator runs it in the master's process (it is the user's own code, never
a worker's output), then replays the worker's availability trace to find when the task
ends. Nothing runs for real, so 100,000 tasks on 1,000 workers take seconds.

How it plugs into the master: an event-driven core, not a thread per task. `execute`
computes a job's finish time and pushes an event on a heap; `wait()` pops the earliest
events and advances simulated time to them. Workers are free when their task ends and
their trace says they are available. Policies plug in through the master's
`scheduler_func` (`first_come`, `fastest_worker_first`), and `replicas=k` runs k copies
of each task on k workers; the first result wins and the other copies are stopped.

Worker availability is a list of `(length, fraction)` intervals: for `length` seconds the
worker runs at `fraction` of its speed (0 = unavailable). `read_fta_workers` builds it
from a Failure Trace Archive `event_trace.tab` file to replay a real desktop grid.

Runs are reproducible: simulated time, ties and worker order are deterministic, so a
seeded program gives identical results. Submit a batch inside `with interface.hold():` so
the clock starts only once the whole batch is queued.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import statistics
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyboinc import contract
from pymw_worker.runner import Functions

from ..errors import UserError
from .base import Completion, Job

Availability = Sequence[tuple[float, float]]
# Columns of a Failure Trace Archive event_trace.tab file (fta.scem.uws.edu.au format).
FTA_NODE, FTA_TYPE, FTA_START, FTA_STOP = (
    "node_id",
    "event_type",
    "event_start_time",
    "event_stop_time",
)
FTA_AVAILABLE = 1
ALWAYS_AVAILABLE: Availability = ((math.inf, 1.0),)


class SimWorker:
    """A simulated worker: a speed (work units per CPU-second) and an availability trace.

    `cycle=True` repeats the trace forever (e.g. on 100 s, off 100 s); otherwise the
    worker leaves the grid when its trace ends.
    """

    __slots__ = ("_always", "_fractions", "_index", "_lengths", "_start", "cycle", "name", "speed")

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


@dataclass
class _Run:
    """A job running on one worker: what its finish event completes."""

    job: Job
    worker: SimWorker
    start: float
    cpu_seconds: float
    output: bytes


# ----------------------------------------------------------------------- policies


def first_come(tasks: list, workers: list) -> tuple[Any, Any]:
    """The oldest task on the worker that has been idle longest (the master's default)."""
    return tasks[0], workers[0]


def fastest_worker_first(tasks: list, workers: list) -> tuple[Any, Any]:
    """The oldest task on the fastest idle worker."""
    return tasks[0], max(workers, key=lambda worker: worker.speed)


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


def read_fta_workers(
    path: str | Path,
    *,
    num_workers: int | None = None,
    speed_func: Callable[[int], float] = lambda _index: 1.0,
) -> list[SimWorker]:
    """Workers whose availability replays a Failure Trace Archive `event_trace.tab`.

    Rows are tab-separated with a header naming at least node_id, event_start_time and
    event_stop_time (seconds); with an event_type column only type 1 (available) rows
    count. Gaps between a node's events are unavailable time. The earliest event of the
    file is time 0 of the simulation; after its last event a node leaves the grid.
    """
    intervals: dict[str, list[tuple[float, float]]] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            columns = handle.readline().split()
            missing = {FTA_NODE, FTA_START, FTA_STOP} - set(columns)
            if missing:
                raise UserError(
                    f"{path} is not an FTA event trace: no {', '.join(sorted(missing))}"
                )
            node, start, stop = (columns.index(name) for name in (FTA_NODE, FTA_START, FTA_STOP))
            kind = columns.index(FTA_TYPE) if FTA_TYPE in columns else None
            for line in handle:
                fields = line.split()
                if len(fields) < len(columns) or (
                    kind is not None and int(fields[kind]) != FTA_AVAILABLE
                ):
                    continue
                if fields[node] not in intervals and num_workers and len(intervals) >= num_workers:
                    continue
                intervals.setdefault(fields[node], []).append(
                    (float(fields[start]), float(fields[stop]))
                )
    except OSError as error:
        raise UserError(f"cannot read FTA trace {path}: {error.strerror}") from None
    except ValueError as error:
        raise UserError(f"{path}: malformed FTA row ({error})") from None
    if not intervals:
        raise UserError(f"{path} has no availability events")
    origin = min(begin for events in intervals.values() for begin, _ in events)
    workers = []
    for index, (name, events) in enumerate(intervals.items()):
        trace, clock = [], origin
        for begin, end in sorted(events):
            begin = max(begin, clock)
            if begin > clock:
                trace.append((begin - clock, 0.0))
            if end > begin:
                trace.append((end - begin, 1.0))
                clock = end
        if trace:
            workers.append(SimWorker(name, speed_func(index), trace))
    return workers


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"total": 0.0, "mean": 0.0, "median": 0.0, "stddev": 0.0}
    return {
        "total": math.fsum(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stddev": statistics.pstdev(values),
    }


# ------------------------------------------------------------------ the event core

# Event kinds, ordered so that at one instant finished work frees workers before idle
# workers are handed new work.
_FINISH, _READY, _LEFT = 0, 1, 2


class EventCore:
    """Simulated time, the event heap and the idle workers: the simulator without PyMW.

    `start` puts work on an idle worker; `advance` moves the clock to the next instant
    with events and returns what finished then. `run_queue` is the plain model (workers
    pulling work from one queue) that the benchmark compares with SimPy.
    """

    def __init__(self) -> None:
        self.time = 0.0
        self.idle: dict[SimWorker, None] = {}  # insertion-ordered: longest idle first
        self.workers_left = 0
        self._events: list[tuple[float, int, int, SimWorker, Any]] = []
        self._sequence = itertools.count()
        self._cancelled: set[int] = set()  # events dropped lazily when they come up

    @property
    def pending(self) -> bool:
        return len(self._events) > len(self._cancelled)

    def add_worker(self, worker: SimWorker) -> None:
        self._make_ready(worker)

    def start(self, worker: SimWorker, cpu_seconds: float, payload: Any) -> int:
        """Run work on an idle worker; returns the event's number (for `cancel`)."""
        del self.idle[worker]
        finish = worker.finish_time(self.time, cpu_seconds) if cpu_seconds else self.time
        kind = _FINISH if finish < math.inf else _LEFT
        when = finish if kind == _FINISH else max(self.time, worker.trace_end)
        number = next(self._sequence)
        heapq.heappush(self._events, (when, kind, number, worker, payload))
        return number

    def cancel(self, number: int, worker: SimWorker) -> None:
        """Stop the work of event `number` now; its worker is free again."""
        self._cancelled.add(number)
        self._make_ready(worker)

    def advance(self) -> list[tuple[int, SimWorker, Any]]:
        """Pop every event of the next instant: (kind, worker, payload), READYs applied."""
        events, cancelled = self._events, self._cancelled
        popped: list[tuple[int, SimWorker, Any]] = []
        while events and events[0][2] in cancelled:  # stopped replicas do not move time
            cancelled.discard(heapq.heappop(events)[2])
        if not events:
            return popped
        self.time = now = events[0][0]
        while events and events[0][0] == now:
            _, kind, number, worker, payload = heapq.heappop(events)
            if number in cancelled:
                cancelled.discard(number)
                continue
            if kind == _READY:
                self.idle[worker] = None
            elif kind == _FINISH:
                self._make_ready(worker)
            else:
                self.workers_left += 1
            popped.append((kind, worker, payload))
        return popped

    def _make_ready(self, worker: SimWorker) -> None:
        ready = worker.available_from(self.time)
        if ready == self.time:
            self.idle[worker] = None
        elif ready < math.inf:
            heapq.heappush(self._events, (ready, _READY, next(self._sequence), worker, None))
        else:
            self.workers_left += 1

    def run_queue(self, work: Iterable[float]) -> tuple[float, int]:
        """Workers pull work units (CPU-seconds at speed 1) first come, first served.

        Returns (makespan, tasks done). The plain model, without the master.
        """
        queue = iter(work)
        done = 0
        events, idle = self._events, self.idle
        while True:
            while idle:
                amount = next(queue, None)
                if amount is None:
                    break
                worker = next(iter(idle))
                self.start(worker, amount / worker.speed, None)
            if not events:
                break
            # One event at a time: the same order as `advance`, without its bookkeeping.
            self.time, kind, _, worker, _ = heapq.heappop(events)
            if kind == _FINISH:
                done += 1
                self._make_ready(worker)
            elif kind == _READY:
                idle[worker] = None
            else:
                self.workers_left += 1
        return self.time, done


# ---------------------------------------------------------------------- the engine


class GridSimulatorInterface:
    """A simulated grid behind the engine protocol; see the module docstring."""

    def __init__(self, workers: Iterable[SimWorker] = (), *, replicas: int = 1) -> None:
        if replicas < 1:
            raise UserError(f"replicas must be at least 1, got {replicas}")
        self.replicas = replicas
        self.core = EventCore()
        self._workers: list[SimWorker] = []
        self._functions = Functions()
        self._wall_times: list[float] = []
        self._cpu_times: list[float] = []
        self._copies: dict[int, list[tuple[int, SimWorker]]] = {}  # task: its replicas
        self._held = 0
        self._woken = threading.Event()
        for worker in workers:
            self.add_worker(worker)

    @classmethod
    def from_options(cls, options: Any) -> GridSimulatorInterface:
        """`-n` always-available workers of speed 1; add others with `add_worker`."""
        count = getattr(options, "num_workers", None) or 1
        return cls(generate_workers(count, lambda _index: 1.0, lambda _index: ALWAYS_AVAILABLE))

    @property
    def time(self) -> float:
        """Simulated seconds since the start."""
        return self.core.time

    def add_worker(self, worker: SimWorker) -> None:
        self._workers.append(worker)
        self.core.add_worker(worker)

    def generate_workers(self, num_workers: int, speed_func, avail_func, *, cycle=False) -> None:
        """Add workers as `generate_workers` makes them (PyMW 0.4's method)."""
        for worker in generate_workers(num_workers, speed_func, avail_func, cycle=cycle):
            self.add_worker(worker)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Keep simulated time still while a batch is submitted (reproducible runs)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            self._woken.set()

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self._workers)

    def idle_workers(self) -> list[Any]:
        idle = list(self.core.idle)
        if self.replicas == 1:
            return idle
        size = self.replicas
        return [
            ReplicaSet(tuple(idle[i * size : (i + 1) * size])) for i in range(len(idle) // size)
        ]

    def execute(self, job: Job, worker: SimWorker | ReplicaSet) -> None:
        copies = self._copies.setdefault(job.task_id, [])
        for copy in worker.workers if isinstance(worker, ReplicaSet) else (worker,):
            cpu_seconds, output = self._cpu_seconds(job, copy)
            run = _Run(job, copy, self.time, cpu_seconds, output)
            copies.append((self.core.start(copy, cpu_seconds, run), copy))

    def wait(self, timeout: float | None) -> list[Completion]:
        """Advance simulated time to the next completions (or to newly idle workers)."""
        if self._held or not self.core.pending:
            if (
                not self._held
                and not self.core.idle
                and self.core.workers_left == len(self._workers)
            ):
                raise UserError("every simulated worker has left the grid; tasks cannot run")
            self._woken.wait(timeout)
            self._woken.clear()
            return []
        completions: list[Completion] = []
        for kind, worker, run in self.core.advance():
            if kind == _LEFT:
                copies = self._copies[run.job.task_id]
                copies.remove(next(copy for copy in copies if copy[1] is worker))
                if not copies:  # no replica left to win
                    del self._copies[run.job.task_id]
                    detail = f"simulated worker {worker.name} left the grid (its trace ended)"
                    completions.append(Completion(run.job.task_id, None, lost=True, detail=detail))
            elif kind == _FINISH:
                completions.extend(self._finish(run))
        return completions

    def wakeup(self) -> None:
        self._woken.set()

    def get_status(self) -> dict[str, Any]:
        wall, cpu = _stats(self._wall_times), _stats(self._cpu_times)
        status: dict[str, Any] = {
            "name": "grid_simulator",
            "sim_time": self.time,
            "num_workers": len(self._workers),
            "workers_left_grid": self.core.workers_left,
            "num_executed_tasks": len(self._wall_times),
            "replicas": self.replicas,
        }
        status.update({f"{key}_wall_time": value for key, value in wall.items()})
        status.update({f"{key}_cpu_time": value for key, value in cpu.items()})
        return status

    def cleanup(self) -> None:
        self._woken.set()

    # --------------------------------------------------------------- internals

    def _cpu_seconds(self, job: Job, worker: SimWorker) -> tuple[float, bytes]:
        """Call the task function with the worker; its return value is the CPU-seconds."""
        program = job.program
        if program.function_name is None:
            raise UserError("the grid simulator runs task functions, not scripts")
        try:
            function = self._functions.get(program.digest, program.function_name, program.code)
            args, _ = contract.decode_input(
                job.input_bytes, classes=contract.task_namespace(function)
            )
        except Exception as error:  # a broken task is that task's error, as on real workers
            outcome = contract.call_task(_raise, (error,))
        else:
            outcome = contract.call_task(function, (worker, *args), args.kwargs)
        value = outcome.value if outcome.ok else 0.0
        if outcome.ok and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
        ):
            problem = TypeError(f"a simulated task returns its CPU-seconds (>= 0), got {value!r}")
            outcome, value = contract.call_task(_raise, (problem,)), 0.0
        return float(value), outcome.encoded

    def _finish(self, run: _Run) -> list[Completion]:
        task_id = run.job.task_id
        for number, worker in self._copies.pop(task_id):
            if worker is not run.worker:
                self.core.cancel(number, worker)  # the first copy won; stop the others
        self._wall_times.append(self.time - run.start)
        self._cpu_times.append(run.cpu_seconds)
        return [
            Completion(
                task_id,
                run.output,
                exit_status=0,
                extra={"worker": run.worker.name, "sim_time": self.time},
            )
        ]


def _raise(error: BaseException) -> None:
    raise error
