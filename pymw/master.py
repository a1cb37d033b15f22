"""The master core that both faces (`PyMW_Master` and `Executor`) drive.

How a task travels::

    submit() ──▶ queue ──▶ dispatcher thread ──execute(job, worker)──▶ engine ──▶ worker
                                 ▲                                                │
                 result/future ◀─┴──decode (safe codec)◀── wait() ◀── completion ◀┘

One dispatcher thread per master, whatever the number of tasks: it assigns queued tasks to
the engine's idle workers (through `scheduler_func` when given), blocks in the engine's
`wait()`, and turns completions into results or errors. Retries, ordering, progress and
status live here once; engines only run jobs. Outputs are decoded with
`pyboinc.contract`'s codec and never unpickled, since they may come from volunteers.
"""

from __future__ import annotations

import atexit
import builtins
import itertools
import logging
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from pathlib import Path
from typing import Any

from pyboinc import contract

from . import errors
from .errors import (
    BrokenMasterError,
    MalformedResultError,
    RemoteTraceback,
    TaskError,
    UserError,
)
from .interfaces.base import Completion, Interface, Job, Program
from .progress import ProgressBar
from .tasks import PyMW_Task, TaskState

logger = logging.getLogger("pymw")
_futures_logger = logging.getLogger("concurrent.futures")

SchedulerFunc = Callable[[list[PyMW_Task], list[Any]], tuple[PyMW_Task, Any]]

# scheduler_func sees the first this-many queued tasks: a policy over the whole queue
# would cost O(queue) per assignment, quadratic over a 100,000-task batch.
SCHEDULER_WINDOW = 1000
# Decoded outputs larger than this are refused: a hostile worker must not exhaust memory.
DEFAULT_MAX_RESULT_BYTES = 256 * 1024 * 1024
# How long shutdown(cancel_pending=True) lets the dispatcher hand the workers what they
# have room for before cancelling the rest (it takes milliseconds; this bounds a stall).
ASSIGNMENT_WAIT = 1.0

_QUEUED, _RUNNING = TaskState.QUEUED.value, TaskState.RUNNING.value

_live_masters: weakref.WeakSet[Master] = weakref.WeakSet()


@atexit.register
def _shut_down_live_masters() -> None:
    """Stop workers and remove temporary files even after Ctrl-C or an unhandled error."""
    for master in list(_live_masters):
        master.terminate()


def trusted_workers(interface: Interface) -> bool:
    """Whether an engine's workers are the user's own processes (`trusted_workers = True`):
    only then may its outputs be pickles. A missing attribute means untrusted."""
    return getattr(interface, "trusted_workers", False) is True


def check_codec(codec: str, interface: Interface) -> str:
    """`codec` if `interface` may use it; one line saying why not otherwise."""
    if codec not in contract.CODECS:
        raise UserError(f"codec must be one of {', '.join(contract.CODECS)}, got {codec!r}")
    if codec == contract.CODEC_PICKLE and not trusted_workers(interface):
        raise UserError(
            f"codec='pickle' is only for workers that are your own long-lived processes "
            f"(generic without fresh processes or a worker app, MPI), not "
            f"{type(interface).__name__}'s: a result could run code when unpickled; use the "
            "default safe codec there"
        )
    return codec


def remote_exception(
    outcome: contract.Outcome,
    classes: Mapping[str, type] | None = None,
    worker: Any = None,
    *,
    trusted: bool = False,
) -> BaseException:
    """The exception to raise in the master for a task that failed on its worker.

    It is rebuilt as its own type with its own args (decoded by the safe codec) when the
    type is a built-in exception or an exception class of the task's program (`classes`,
    the allow-list built at submit), so `except ZeroDivisionError` and `except MyError`
    work; anything else becomes a TaskError. A SystemExit comes back as itself only from
    `trusted` workers (the user's own processes, as ProcessPoolExecutor's are): from a
    volunteer it would end the master, so there it is a TaskError. Only such a class's
    constructor runs, as unpickling would; nothing the worker names otherwise. With the
    pickle codec (trusted workers only) the worker's own exception object comes back. The
    worker's traceback is chained as `__cause__`, headed by the worker (`worker`, the
    engine's) and host.
    """
    error = outcome.exception
    kind = _exception_class(outcome.error_type or "", classes or {}, trusted)
    if error is None and kind is not None:
        args = outcome.error_args if outcome.error_args is not None else (outcome.error_message,)
        try:
            error = kind(*args)
        except Exception:  # a constructor that wants other arguments than its args
            error = None
    if error is None:
        error = TaskError(f"{outcome.error_type}: {outcome.error_message}", outcome.error_type)
    error.__cause__ = RemoteTraceback(
        outcome.traceback or "",
        worker=getattr(worker, "name", None) or (None if worker is None else str(worker)),
        host=outcome.host,
        pid=outcome.pid,
    )
    return error


def _exception_class(
    name: str, classes: Mapping[str, type], trusted: bool
) -> type[BaseException] | None:
    # A program class travels as "module:qualname", a builtin by its bare name.
    kind = contract.resolve_class(classes, name) if ":" in name else vars(builtins).get(name)
    allowed = (Exception, SystemExit) if trusted else Exception
    return kind if isinstance(kind, type) and issubclass(kind, allowed) else None


class Master:
    """Owns the tasks of one engine. Thread-safe; one dispatcher thread drives the engine."""

    def __init__(
        self,
        interface: Interface,
        *,
        scheduler_func: SchedulerFunc | None = None,
        max_retries: int = 0,
        delete_files: bool = True,
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        show_progress: bool | None = None,
        codec: str = contract.CODEC_JSON,
    ) -> None:
        if not isinstance(interface, Interface):
            raise UserError(
                f"{type(interface).__name__} is not a PyMW interface; use one from "
                "pymw.interfaces (get_interface(options) builds it from the command line)"
            )
        if max_retries < 0:
            raise UserError(f"max_retries must be 0 or more, got {max_retries}")
        self.interface = interface
        # How arguments and results travel: the safe codec, or pickle for trusted workers.
        self.codec = check_codec(codec, interface)
        self.delete_files = delete_files
        self._scheduler_func = scheduler_func
        self._max_retries = max_retries
        self._max_result_bytes = max_result_bytes
        self._ids = itertools.count()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        # Threads waiting in next_done: a task's end wakes them, and costs no notify when
        # none waits (futures and callbacks take most results).
        self._collectors = 0
        self._queue: deque[PyMW_Task] = deque()
        self._running: dict[int, PyMW_Task] = {}
        # Oldest first. An OrderedDict: popping a plain dict's first entry skips the holes
        # that earlier pops left, which made collecting n tasks cost n² steps.
        self._uncollected: OrderedDict[int, PyMW_Task] = OrderedDict()
        # By the states' values, not the states: an Enum's hash runs Python code, and
        # every task moves state a few times.
        self._counts = {state.value: 0 for state in TaskState}
        self._wakeup_pending = False
        # Shutdowns waiting for the dispatcher's next assignment (see _let_workers_take):
        # as for _collectors, the dispatcher notifies only when one waits.
        self._assigned = threading.Condition(self._lock)
        self._awaiting_assignment = 0
        self._shutting_down = False
        self._cancel_pending = False
        self._broken: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._progress = ProgressBar(show_progress)
        _live_masters.add(self)

    # ------------------------------------------------------------------ submitting

    def submit(
        self,
        program: Program | None,
        input_bytes: bytes = b"",
        *,
        data_zip: Path | None = None,
        name: str | None = None,
        with_future: bool = False,
        collect: bool = True,
    ) -> PyMW_Task:
        """Queue a task. `program=None` makes a composite task finished by `finish_task`."""
        (task,) = self.submit_many(
            program,
            [input_bytes],
            data_zip=data_zip,
            name=name,
            with_future=with_future,
            collect=collect,
        )
        return task

    def submit_many(
        self,
        program: Program | None,
        inputs: Sequence[bytes],
        *,
        data_zip: Path | None = None,
        name: str | None = None,
        with_future: bool = False,
        collect: bool = True,
    ) -> list[PyMW_Task]:
        """Queue a task of `program` per input, in order, taking the lock and waking the
        dispatcher once for all of them (`Executor.map`'s chunks)."""
        with self._lock:
            if self._broken is not None:
                raise BrokenMasterError(f"the master's engine failed: {self._broken}")
            if self._shutting_down:
                raise RuntimeError("cannot submit a task after shutdown")
            given_name = name or None
            tasks = [
                PyMW_Task(next(self._ids), given_name, program, input_bytes, data_zip)
                for input_bytes in inputs
            ]
            for task in tasks:
                if with_future:
                    task.future = Future()
                elif not collect:
                    task.callbacks = []  # the submitter's callbacks take the result
            self._progress.add_total(len(tasks))
            if program is None:
                for task in tasks:
                    task.state = TaskState.RUNNING
                self._counts[_RUNNING] += len(tasks)
                return tasks
            self._counts[_QUEUED] += len(tasks)
            self._queue.extend(tasks)
            self._ensure_dispatcher()
            if not self._wakeup_pending:
                self._wakeup_pending = True
                self.interface.wakeup()
        return tasks

    def add_done_callback(self, task: PyMW_Task, callback: Callable[[PyMW_Task], None]) -> None:
        """Call `callback(task)` once the task is done (at once if it already is)."""
        with self._lock:
            if not task.state.done:
                if task.callbacks is None:
                    task.callbacks = []
                task.callbacks.append(callback)
                return
        callback(task)

    def finish_task(self, task: PyMW_Task, result: Any = None, error: BaseException | None = None):
        """Finish a composite task (see `submit(None)`), e.g. a MapReduce."""
        with self._lock:
            self._set_done(task, result, error)
        self._notify_done([task])

    def _ensure_dispatcher(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._dispatch_forever, name="pymw-dispatcher", daemon=True
            )
            self._thread.start()

    # ---------------------------------------------------------------- dispatcher

    def _dispatch_forever(self) -> None:
        try:
            while True:
                with self._lock:
                    assignments = self._assign()
                    if self._awaiting_assignment:
                        self._assigned.notify_all()
                    if not assignments and self._nothing_left_at_shutdown():
                        break
                for job, worker in assignments:
                    self.interface.execute(job, worker)
                self._handle(self.interface.wait(None))
        except (UserError, BrokenMasterError) as error:  # the message says what went wrong
            logger.info("PyMW dispatcher stopped: %s", error)
            self._break(error)
        except BaseException as error:
            logger.exception("PyMW dispatcher failed")
            self._break(error)
        self._stop_engine()

    def _nothing_left_at_shutdown(self) -> bool:
        """Shutting down with nothing running and nothing to run: the dispatcher may stop.

        Tasks whose futures were cancelled leave the queue here first; left in it, they
        would keep the dispatcher waiting for completions that never come.
        """
        if not self._shutting_down or self._running:
            return False
        for task in [task for task in self._queue if task.future and task.future.cancelled()]:
            self._queue.remove(task)
            self._move(task, TaskState.CANCELLED)
            self._finish_bookkeeping(task)
        return self._cancel_pending or not self._queue

    def _assign(self) -> list[tuple[Job, Any]]:
        self._wakeup_pending = False
        if not self._queue:
            return []
        workers = list(self.interface.idle_workers())
        assignments = []
        while self._queue and workers:
            if self._scheduler_func is None:
                task, worker = self._queue.popleft(), workers[0]
            else:
                window = list(itertools.islice(self._queue, SCHEDULER_WINDOW))
                picked = self._scheduler_func(window, workers)
                try:
                    task, worker = picked
                    chosen = task in window and worker in workers
                except (TypeError, ValueError):  # not a pair
                    chosen = False
                if not chosen:
                    raise UserError(
                        f"scheduler_func returned {picked!r}; it must return (task, worker), "
                        "one task from task_list and one worker from worker_list"
                    )
                del self._queue[window.index(task)]
            # A requeued task (its worker died, or it was recalled) has a running future:
            # only a task never given to a worker has one to start. A cancelled one leaves
            # the worker's slot to the next task.
            if (
                task.future is not None
                and task.worker is None
                and not task.future.set_running_or_notify_cancel()
            ):
                self._move(task, TaskState.CANCELLED)
                self._finish_bookkeeping(task)
                continue
            workers.remove(worker)
            task.attempts += 1
            task.worker = worker
            self._move(task, TaskState.RUNNING)
            self._running[task.task_id] = task
            assignments.append((self._job_for(task), worker))
        return assignments

    def _job_for(self, task: PyMW_Task) -> Job:
        assert task.program is not None
        return Job(
            task.task_id,
            task.name,
            task.program,
            task.input_bytes,
            task.data_zip,
            task.attempts,
            keep_files=not self.delete_files,
            max_output_bytes=self._max_result_bytes,
            codec=self.codec,
        )

    def _handle(self, completions: Iterable[Completion]) -> None:
        done: list[PyMW_Task] = []
        broken: BrokenMasterError | None = None
        try:
            with self._lock:
                for completion in completions:
                    if completion.setup_failed:
                        broken = broken or self._setup_failure(completion)
                    elif (task := self._settle(completion)) is not None:
                        done.append(task)
        finally:
            self._notify_done(done)
        if broken is not None:
            raise broken

    def _settle(self, completion: Completion) -> PyMW_Task | None:
        """Requeue or finish the task a completion is about; the task, if now done."""
        task = self._running.get(completion.task_id)
        if task is None:
            return None  # a late replica or a job we already gave up on
        if completion.lost and (not completion.started or task.attempts <= self._max_retries):
            if not completion.started:
                task.attempts -= 1
            logger.info("requeuing %s: %s", task.name, completion.detail)
            del self._running[task.task_id]
            self._move(task, TaskState.QUEUED)
            self._queue.appendleft(task)
            return None
        if completion.oversize:  # refused unread by the engine
            result, error = None, self._oversize_error(task, completion.oversize)
        else:
            result, error = self._decode(task, completion)
        # Only now: should decoding fail, _break still finds the task running.
        del self._running[task.task_id]
        self._set_done(task, result, error)
        return task

    def _oversize_error(self, task: PyMW_Task, size: int) -> MalformedResultError:
        return MalformedResultError(
            f"task {task.name}: malformed result: its output of {size} bytes is over "
            f"max_result_bytes ({self._max_result_bytes}) and was not read"
        )

    def _setup_failure(self, completion: Completion) -> BrokenMasterError:
        """A worker's initializer failed: the master breaks, as ProcessPoolExecutor does."""
        cause: BaseException
        if completion.output is None:
            detail = completion.detail or "the worker died in its initializer"
            cause = errors.WorkerLostError(detail)
        else:
            try:
                outcome = contract.decode_output(
                    completion.output, max_bytes=self._max_result_bytes
                )
            except contract.ContractError as problem:
                cause = MalformedResultError(f"the initializer's output: {problem}")
            else:
                cause = remote_exception(outcome)
        # ProcessPoolExecutor's worker logs this on the same logger, at the same level.
        _futures_logger.critical("Exception in initializer:", exc_info=cause)
        error = BrokenMasterError(f"a worker's initializer failed: {type(cause).__name__}: {cause}")
        error.__cause__ = cause
        return error

    def _decode(self, task: PyMW_Task, completion: Completion) -> tuple[Any, BaseException | None]:
        if completion.outcome is not None:  # the task ran in this process: nothing to decode
            return self._result_of(task, completion.outcome)
        if completion.output is None:
            detail = completion.detail or f"exit status {completion.exit_status}"
            if completion.lost:
                return None, errors.WorkerLostError(f"task {task.name}: worker lost ({detail})")
            return None, TaskError(f"task {task.name} produced no output ({detail})", "NoOutput")
        classes = getattr(task.program, "classes", None) or {}
        # Pickles only from an engine marked trusted, whatever the output's bytes say.
        codec = self.codec if trusted_workers(self.interface) else contract.CODEC_JSON
        try:
            outcome = contract.decode_output(
                completion.output, classes=classes, codec=codec, max_bytes=self._max_result_bytes
            )
        except contract.ContractError as problem:
            if task.program is not None and task.program.function_name is None:
                # A user script's own output format, as bytes (an engine may hand over
                # the bytearray it read the output into).
                return bytes(completion.output), None
            return None, MalformedResultError(f"task {task.name}: malformed result: {problem}")
        return self._result_of(task, outcome)

    def _result_of(
        self, task: PyMW_Task, outcome: contract.Outcome
    ) -> tuple[Any, BaseException | None]:
        if outcome.stdout or outcome.stderr:
            task.stdout_stderr = (outcome.stdout, outcome.stderr)
        if outcome.ok:
            return outcome.value, None
        classes = getattr(task.program, "classes", None) or {}
        trusted = trusted_workers(self.interface)
        return None, remote_exception(outcome, classes, task.worker, trusted=trusted)

    def _set_done(self, task: PyMW_Task, result: Any, error: BaseException | None) -> None:
        task.result_or_error = result if error is None else error
        task.input_bytes = b""
        self._move(task, TaskState.FAILED if error is not None else TaskState.FINISHED)
        self._finish_bookkeeping(task)

    def _finish_bookkeeping(self, task: PyMW_Task) -> None:
        if task.collect:
            self._uncollected[task.task_id] = task
        self._progress.advance(1)
        if self._collectors:
            self._changed.notify_all()

    def _move(self, task: PyMW_Task, state: TaskState) -> None:
        self._counts[task.state._value_] -= 1
        self._counts[state._value_] += 1
        task.state = state

    def _notify_done(self, tasks: Sequence[PyMW_Task]) -> None:
        """Resolve futures and run callbacks outside the lock (they may submit tasks)."""
        for task in tasks:
            if task.future is not None:
                try:
                    if task.error is not None:
                        task.future.set_exception(task.error)
                    else:
                        task.future.set_result(task.result)
                except InvalidStateError:  # cancelled
                    pass
            callbacks, task.callbacks = task.callbacks, None
            for callback in callbacks or ():
                callback(task)

    def _break(self, error: BaseException) -> None:
        with self._lock:
            self._broken = error
            failed = [*self._queue, *self._running.values()]
            self._queue.clear()
            self._running.clear()
            for task in failed:
                broken = BrokenMasterError(f"the master's engine failed: {error}")
                broken.__cause__ = error
                if task.future is not None and task.future.cancelled():
                    continue
                self._set_done(task, None, broken)
        self._notify_done(failed)

    # ------------------------------------------------------------------ collecting

    def next_done(
        self, among: Sequence[PyMW_Task] | None, block: bool, timeout: float | None = None
    ) -> PyMW_Task | None:
        """A done task (any, or one of `among`), each returned once; None if none yet."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                task = self._pop_done(among)
                if task is not None or not block:
                    return task
                pending = self._counts[_QUEUED] + self._counts[_RUNNING]
                if among is None and not pending:
                    raise UserError("get_result: no task is pending; submit tasks first")
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._collectors += 1
                try:
                    self._changed.wait(remaining)
                finally:
                    self._collectors -= 1

    def _pop_done(self, among: Sequence[PyMW_Task] | None) -> PyMW_Task | None:
        if among is None:
            if not self._uncollected:
                return None
            return self._uncollected.popitem(last=False)[1]
        for task in among:
            if task.task_id in self._uncollected:
                return self._uncollected.pop(task.task_id)
        for task in among:
            if task.state.done:
                return task
        return None

    # --------------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        with self._lock:
            busy_workers = {id(task.worker) for task in self._running.values()}
            counts = dict(self._counts)
        counts["total"] = sum(counts.values())
        return {
            "tasks": counts,
            "workers": {"total": self.interface.num_workers, "active": len(busy_workers)},
            "interface": self.interface.get_status(),
        }

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Stop accepting tasks, optionally cancel queued ones; the engine stops when idle."""
        if cancel_pending:
            with self._lock:
                self._let_workers_take()
        self._close(wait, cancel_pending)

    def _close(self, wait: bool, cancel_pending: bool) -> None:
        with self._lock:
            self._shutting_down = True
            self._cancel_pending = self._cancel_pending or cancel_pending
            cancelled = []
            while cancel_pending and self._queue:
                task = self._queue.popleft()
                if task.future is not None:
                    task.future.cancel()
                self._move(task, TaskState.CANCELLED)
                self._finish_bookkeeping(task)
                cancelled.append(task)
            thread = self._thread
        self._notify_done(cancelled)
        if thread is None:
            self._stop_engine()
            return
        self.interface.wakeup()
        if wait and thread is not threading.current_thread():
            thread.join()

    def _let_workers_take(self) -> None:
        """Wait (under the lock) until the dispatcher has handed the workers the queued
        tasks they have room for, if tasks came since it last did.

        ProcessPoolExecutor's manager thread moves new calls to its workers' queue at
        once, and shutdown(cancel_futures=True) cancels only those not moved yet: so
        here, tasks that free workers would take at once are started, not cancelled.
        """
        thread = self._thread
        if not self._wakeup_pending or thread is None or thread is threading.current_thread():
            return
        self._awaiting_assignment += 1
        try:
            self._assigned.wait_for(
                lambda: not self._wakeup_pending or self._broken is not None, ASSIGNMENT_WAIT
            )
        finally:
            self._awaiting_assignment -= 1

    def terminate(self) -> None:
        """Stop now: cancel queued tasks and stop the engine with its running work."""
        self._close(wait=False, cancel_pending=True)
        self._stop_engine()

    def _stop_engine(self) -> None:
        self.interface.cleanup()
        self._progress.close()
        _live_masters.discard(self)
