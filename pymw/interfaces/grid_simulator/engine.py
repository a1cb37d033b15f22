"""`GridSimulatorInterface`: the event core behind the engine protocol.

A job's task function runs here, in the master's process (it is the user's own code,
never a worker's output), once per copy, with the copy's worker; its return value is the
copy's CPU-seconds, which the worker's trace turns into a finish event. What each worker
is running is kept in per-worker arrays indexed by `SimWorker.number`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from array import array
from collections import deque
from collections.abc import Iterable
from typing import Any

from pyboinc import contract
from pymw_worker.runner import Functions

from ...errors import UserError
from ...programs import MAP_CHUNK_FUNCTION
from ..base import Completion, InProcessInput, Job
from .core import LEFT, EventCore
from .holds import Holds
from .workers import ALWAYS_AVAILABLE, ReplicaSet, SimWorker, generate_workers

# What `idle_workers` shows the master, and so a `scheduler_func`, at most.
IDLE_WINDOW = 1000
# With `lookahead`, `wait` returns after about this many completions at most.
COMPLETIONS_PER_WAIT = 1000


class _QueueSlot:
    """What `idle_workers` shows beyond the idle workers with `lookahead`: a task given
    to it waits in the simulator's own first-come queue. No speed: a policy that picks
    the fastest worker takes the real ones first."""

    name = "queue"
    speed = 0.0

    def __repr__(self) -> str:
        return "<grid simulator queue slot>"


QUEUE_SLOT = _QueueSlot()


class GridSimulatorInterface:
    """A simulated grid behind the engine protocol; see the package docstring."""

    # Task functions run here, in the master's process: the submitter hands their
    # arguments over as they are (`InProcessInput`), with no encoding to decode.
    calls_in_process = True

    def __init__(
        self, workers: Iterable[SimWorker] = (), *, replicas: int = 1, lookahead: int = 0
    ) -> None:
        """`lookahead=n` lets the master hand over up to n tasks more than there are
        idle workers, in bulk; the simulator starts them first come, first served as
        workers free up, exactly as the master's default policy would, and plays on
        through many completions per `wait`. Only with the master's first-come policy
        (no `scheduler_func`)."""
        if replicas < 1 or lookahead < 0:
            raise UserError(
                f"replicas must be at least 1 and lookahead 0 or more, got {replicas}, {lookahead}"
            )
        self.replicas, self.lookahead = replicas, lookahead
        self._queue: deque[Job] = deque()  # taken ahead with `lookahead`
        self.core = EventCore()
        self._functions = Functions()
        self._wall_times = array("d")
        self._cpu_times = array("d")
        # Per worker (by SimWorker.number): the job it runs, since when, for how long.
        self._jobs: list[Job | None] = []
        self._starts = array("d")
        self._cpu_seconds = array("d")
        # Only the copy that will finish first keeps its outcome (see EventCore.start).
        self._outcomes: list[contract.Outcome | None] = []
        # Task: the numbers of the workers running its copies (an array: nothing for the
        # garbage collector to walk, with 100,000 tasks in flight).
        self._copies: dict[int, array] = {}
        # When each finished task ended, in order: the completion curve.
        self.completion_times = array("d")
        self._holds = Holds()
        # A job came since the last `wait`: the master may hold more for idle workers
        # that the IDLE_WINDOW did not show it, so `wait` neither sleeps on them nor
        # moves time past them (a streaming batch hung so, waiting for a submission).
        self._given = False
        # Queue slots shown in the last `idle_workers` and how many the master filled:
        # all of them, and it may have more, so `wait` returns early to be topped up.
        self._slots_shown = self._slots_filled = 0
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
        self._jobs.append(None)
        self._starts.append(0.0)
        self._cpu_seconds.append(0.0)
        self._outcomes.append(None)
        self.core.add_worker(worker)

    def generate_workers(self, num_workers: int, speed_func, avail_func, *, cycle=False) -> None:
        """Add workers as `generate_workers` makes them (PyMW 0.4's method)."""
        for worker in generate_workers(num_workers, speed_func, avail_func, cycle=cycle):
            self.add_worker(worker)

    def hold(self, *, streaming: bool = False) -> contextlib.AbstractContextManager[None]:
        """Submit a batch inside this, so that the clock starts only once it is queued:
        runs are reproducible however fast tasks are submitted.

        With `streaming=True` simulated time moves on while no worker (no replica set) is
        idle, which cannot start any task later than a fully queued batch would: a
        program may then submit as results come back and keep few tasks in memory, as
        long as it keeps more tasks in flight than there are workers.
        """
        return self._holds.hold(streaming=streaming)

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self.core.workers)

    def idle_workers(self) -> list[Any]:
        """The longest-idle workers (replica sets), at most IDLE_WINDOW of them: the
        master asks after every completion, and 100,000 idle hosts each time would make
        a batch's start quadratic."""
        idle = list(itertools.islice(self.core.idle, IDLE_WINDOW * self.replicas))
        slots: list[Any] = []
        if len(self.core.idle) <= len(idle):  # every idle worker shown: room to queue
            slots = [QUEUE_SLOT] * min(IDLE_WINDOW, self.lookahead - len(self._queue))
        self._slots_shown, self._slots_filled = len(slots), 0
        if self.replicas == 1:
            return idle + slots
        size = self.replicas
        sets: list[Any] = [
            ReplicaSet(tuple(idle[i * size : (i + 1) * size])) for i in range(len(idle) // size)
        ]
        return sets + slots

    def execute(self, job: Job, worker: SimWorker | ReplicaSet | _QueueSlot) -> None:
        self._given = True
        if worker is QUEUE_SLOT:
            self._slots_filled += 1
            if len(self.core.idle) >= self.replicas:
                raise UserError(
                    "GridSimulatorInterface(lookahead=...) takes tasks ahead first come, "
                    "first served: use it without a scheduler_func"
                )
            self._queue.append(job)
        elif isinstance(worker, ReplicaSet):
            self._start(job, list(worker.workers))
        else:
            self._start(job, [worker])

    def _start(self, job: Job, copies: list[SimWorker]) -> None:
        call = task_call(self._functions, job)
        now, jobs, starts = self.core.time, self._jobs, self._starts
        runs = [run_task(call, copy) for copy in copies]
        seconds = [cpu_seconds for cpu_seconds, _ in runs]
        for copy in copies:
            jobs[copy.number] = job
            starts[copy.number] = now
        winner = self.core.start(copies, seconds)
        if winner >= 0:
            number = copies[winner].number
            self._cpu_seconds[number], self._outcomes[number] = runs[winner]
        self._copies[job.task_id] = array("q", [copy.number for copy in copies])

    def wait(self, timeout: float | None) -> list[Completion]:
        """Advance simulated time to the next completions (or to newly idle workers)."""
        core = self.core
        holds = self._holds
        if holds.woken.is_set():
            # A task came (or a hold ended) since the master last assigned: let it assign
            # first, or a task submitted inside a hold could start after time moved on.
            holds.woken.clear()
            return []
        idle_set = len(core.idle) >= self.replicas  # the master could start a task now
        given, self._given = self._given, False
        if given and idle_set:
            # The master filled the IDLE_WINDOW it was shown: it may have more tasks for
            # the other idle workers, so ask it before time moves on.
            return []
        held_back = holds.frozen or (holds.streaming and idle_set)
        # Nothing running and a worker idle: the master has no task left to give, so
        # time has no reason to move (it would only walk through availability traces).
        if held_back or (idle_set and not core.busy) or not core.pending:
            if not holds.any and not core.idle and core.workers_left == len(core.workers):
                raise UserError("every simulated worker has left the grid; tasks cannot run")
            holds.sleep(timeout)
            return []
        # The master filled every queue slot it was shown: it may have more to give.
        topped_up = 0 < self._slots_shown == self._slots_filled
        self._slots_shown = self._slots_filled = 0
        completions: list[Completion] = []
        while True:
            self._advance(completions)
            self._start_queued()
            if not self.lookahead or len(core.idle) >= self.replicas or not core.pending:
                break  # the master decides what runs next
            if completions and (
                len(completions) >= COMPLETIONS_PER_WAIT
                or (topped_up and len(self._queue) < self.lookahead // 2)
            ):
                break  # results to hand back, and room for the master to top the queue up
        return completions

    def _advance(self, completions: list[Completion]) -> None:
        """The events of the next instant, as completions."""
        for kind, worker in self.core.advance():
            job = self._jobs[worker.number]
            assert job is not None
            copies = self._copies.get(job.task_id)
            if copies is None:
                continue  # another copy of this task ended first, at this same instant
            if kind == LEFT:
                copies.remove(worker.number)
                if not copies:  # no replica left to win
                    del self._copies[job.task_id]
                    detail = f"simulated worker {worker.name} left the grid (its trace ended)"
                    completions.append(Completion(job.task_id, None, lost=True, detail=detail))
            else:
                completions.append(self._finish(job, worker))

    def _start_queued(self) -> None:
        """Tasks taken ahead, oldest first, on the longest-idle workers (replica sets):
        what the master's first-come policy would give them."""
        idle, size = self.core.idle, self.replicas
        while self._queue and len(idle) >= size:
            self._start(self._queue.popleft(), list(itertools.islice(idle, size)))

    def wakeup(self) -> None:
        self._holds.woken.set()

    def get_status(self) -> dict[str, Any]:
        wall, cpu = stats(self._wall_times), stats(self._cpu_times)
        status: dict[str, Any] = {
            "name": "grid_simulator",
            # The makespan: the clock may have moved on through idle workers' traces.
            "sim_time": self.completion_times[-1] if self.completion_times else 0.0,
            "num_workers": len(self.core.workers),
            "workers_left_grid": self.core.workers_left,
            "num_executed_tasks": len(self._wall_times),
            "replicas": self.replicas,
        }
        status.update({f"{key}_wall_time": value for key, value in wall.items()})
        status.update({f"{key}_cpu_time": value for key, value in cpu.items()})
        return status

    def cleanup(self) -> None:
        self._holds.woken.set()

    # --------------------------------------------------------------- internals

    def _finish(self, job: Job, worker: SimWorker) -> Completion:
        number = worker.number
        for copy in self._copies.pop(job.task_id):
            if copy != number:
                self.core.stop(self.core.workers[copy])  # the first copy won; stop the others
        self.completion_times.append(self.time)
        self._wall_times.append(self.time - self._starts[number])
        self._cpu_times.append(self._cpu_seconds[number])
        outcome = self._outcomes[number]
        self._outcomes[number] = None
        assert outcome is not None
        return Completion(job.task_id, None, exit_status=0, outcome=outcome)


TaskCall = tuple[Any, contract.Arguments] | BaseException


def task_call(functions: Functions, job: Job) -> TaskCall:
    """The task function and its arguments (as submitted, or decoded from an input file),
    or why there are none."""
    program = job.program
    if program.function_name is None:
        raise UserError("the grid simulator runs task functions, not scripts")
    try:
        function = functions.get(program.digest, program.function_name, program.code)
        if program.function_name == MAP_CHUNK_FUNCTION:
            function = _MapChunk(function)
        if type(job.input_bytes) is InProcessInput:
            return function, job.input_bytes.arguments
        args, _ = contract.decode_input(job.input_bytes, classes=contract.task_namespace(function))
    except Exception as error:  # a broken task is that task's error, as on real workers
        return error
    return function, args


def run_task(call: TaskCall, worker: SimWorker) -> tuple[float, contract.Outcome]:
    """Call the task function with the worker, as a worker would (`contract.call_task`:
    its prints are the task's stdout, its error the task's result); its return value is
    the CPU-seconds. The outcome goes to the master unencoded: the call ran here.
    """
    if isinstance(call, BaseException):
        return 0.0, contract.call_task(_raise, (call,), codec=None)
    function, args = call
    outcome = contract.call_task(function, (worker, *args), args.kwargs, codec=None)
    if not outcome.ok:
        if isinstance(outcome.exception, TypeError):
            problem = _without_worker(function, args)
            if problem is not None:
                return 0.0, contract.call_task(_raise, (problem,), codec=None)
        return 0.0, outcome
    values = outcome.value if type(function) is _MapChunk else (outcome.value,)
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problem = TypeError(f"a simulated task returns its CPU-seconds (>= 0), got {value!r}")
            return 0.0, contract.call_task(_raise, (problem,), codec=None)
    return float(values[0] if len(values) == 1 else math.fsum(values)), outcome


class _MapChunk:
    """An `Executor.map` chunk as one simulated task: the function over each row, with
    the worker first as every task gets it; the chunk's CPU-seconds are its rows' sum."""

    __slots__ = ("chunk",)

    def __init__(self, chunk) -> None:
        self.chunk = chunk

    def __call__(self, worker: SimWorker, *columns: list) -> list:
        return self.chunk(itertools.repeat(worker), *columns)


def _without_worker(function, args: contract.Arguments) -> UserError | None:
    """The error for a task function that cannot take the simulated worker first, as
    the simulator calls it; None if it can, or if that cannot be told (a map chunk, a
    builtin). Asked only once a call failed with a TypeError."""
    if type(function) is _MapChunk:
        return None
    import inspect  # only here: a failed call is rare, and inspect costs every start

    try:
        signature = inspect.signature(function)
        signature.bind(None, *args, **args.kwargs)
    except ValueError:  # no signature to read
        return None
    except TypeError:
        return UserError(
            "the grid simulator calls a task function with the simulated worker first, "
            "f(worker, *args), and takes what it returns as the task's CPU-seconds (see "
            f"examples/worker_sim.py); {function.__name__}{signature} takes no worker"
        )
    return None


def _raise(error: BaseException) -> None:
    raise error


def stats(values: array) -> dict[str, float]:
    if not values:
        return {"total": 0.0, "mean": 0.0, "median": 0.0, "stddev": 0.0}
    return {
        "total": math.fsum(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stddev": statistics.pstdev(values),
    }
