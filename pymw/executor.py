"""`pymw.Executor`: PyMW as a drop-in `concurrent.futures.ProcessPoolExecutor`.

    with pymw.Executor() as pool:                       # all local cores
        futures = [pool.submit(simulate, seed, steps=100) for seed in range(100)]
        for future in concurrent.futures.as_completed(futures):
            print(future.result())

`max_workers`, `initializer`, `initargs`, `max_tasks_per_child`, `map(chunksize=,
timeout=)`, the errors, interpreter exit and `del` mean what they mean for
ProcessPoolExecutor. The engine is any PyMW interface (`interface=MPIInterface()` and so
on), with the same worker contract as `PyMW_Master`. A task's error is re-raised by
`result()` with the worker's traceback chained as `__cause__`.

How functions travel (by reference when the worker can import them, otherwise as source
with the module-level names they use) is `pymw.shipping`'s; arguments and results go
through the safe codec.

At interpreter exit an executor that was not shut down finishes its queued and running
tasks first, as ProcessPoolExecutor's do: the hook runs from `threading._register_atexit`,
as CPython's own executors', before the master's atexit handler would stop the engine.
"""

from __future__ import annotations

import collections
import concurrent.futures
import inspect
import itertools
import os
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from pyboinc import contract
from pymw_worker.runner import call_pickled

from .interfaces.base import Interface
from .master import Master, SchedulerFunc
from .signing import SigningKeySource
from .submission import UnpicklableArgumentsError, start_master
from .tasks import PyMW_Task

# Masters of executors not shut down yet, drained at interpreter exit.
_running_masters: weakref.WeakSet[Master] = weakref.WeakSet()
_interpreter_exiting = False


def _drain_at_exit() -> None:
    global _interpreter_exiting
    _interpreter_exiting = True
    for master in list(_running_masters):
        master.shutdown(wait=True)


threading._register_atexit(_drain_at_exit)


class Executor(concurrent.futures.Executor):
    """Run functions on PyMW workers and return standard Futures.

    The engine is `interface`: an interface, or an interface class that this makes with
    `max_workers` workers (`interface=MPIInterface`); the generic interface by default.
    `max_workers` defaults to the number of cores. PyMW's own options: `modules` imported and
    `dep_funcs` defined on every worker (rarely needed now that a function's module-level
    names travel with it), `data_files` unpacked beside every task, `max_retries` for
    tasks whose worker died, `scheduler_func`, `show_progress`, and `sign_key`, which signs
    every task script, as in `PyMW_Master` (docs/signing.md). `codec="pickle"` pickles
    arguments and results (cloudpickle), for what the safe codec cannot carry, and callables
    with no code to send (bound methods, partials); only on engines whose workers are your
    own processes (generic, MPI), refused elsewhere.

    For a while, an interface passed as the first argument (PyMW 1.0's first drafts) is
    taken as `interface=` with a DeprecationWarning.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        interface: Interface | type | None = None,
        initializer: Callable | None = None,
        initargs: tuple = (),
        max_tasks_per_child: int | None = None,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str] = (),
        max_retries: int = 0,
        scheduler_func: SchedulerFunc | None = None,
        show_progress: bool | None = False,
        sign_key: SigningKeySource | None = None,
        codec: str = "json",
    ) -> None:
        if isinstance(max_workers, Interface) and interface is None:
            warnings.warn(
                "pass the engine as Executor(interface=...): the first argument is "
                "max_workers, as for ProcessPoolExecutor",
                DeprecationWarning,
                stacklevel=2,
            )
            max_workers, interface = None, max_workers
        _check_pool_options(max_workers, initializer, max_tasks_per_child)
        self._submitter = start_master(
            _engine(interface, max_workers),
            sign_key,
            scheduler_func=scheduler_func,
            max_retries=max_retries,
            show_progress=show_progress,
            codec=codec,
        )
        self._master = self._submitter.master
        self._modules, self._dep_funcs = tuple(modules), tuple(dep_funcs)
        self._data_files = tuple(data_files)
        try:
            self._submitter.configure_workers(
                initializer, initargs, max_tasks_per_child, self._modules, self._dep_funcs
            )
        except BaseException:
            self._master.terminate()  # the engine may have started workers already
            raise
        self._shutdown_called = False
        _running_masters.add(self._master)
        # `del executor` lets the workers stop once idle, as for ProcessPoolExecutor: the
        # queued tasks still run, since their futures may still be waited for. (At exit,
        # _drain_at_exit does it.)
        weakref.finalize(self, Master.shutdown, self._master, False).atexit = False

    @property
    def interface(self) -> Interface:
        return self._master.interface

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self._submit(fn, args, kwargs)

    def map(
        self,
        fn: Callable,
        *iterables: Iterable,
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator:
        """`fn` over the iterables' rows, like `map`, with each `chunksize` rows one task.

        All tasks are submitted at once; results come in order, and a task's error is
        raised when its first item is reached. `timeout` counts from this call; when it
        expires, the tasks not started are cancelled.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        deadline = None if timeout is None else time.monotonic() + timeout
        self._check_open()
        chunks: Iterable[tuple] = map(tuple, _argument_columns(iterables, chunksize))
        if self._travels_pickled(fn):
            chunks = _with_callable_column(fn, chunks)
            fn = call_pickled
        queued = self._submitter.submit_map(
            fn, chunks, self._modules, self._dep_funcs, self._data_files
        )
        return _MapResults(_chunks_in_order([_future_of(task) for task in queued], deadline))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._shutdown_called = True
        self._master.shutdown(wait=wait, cancel_pending=cancel_futures)
        if wait:
            _running_masters.discard(self._master)
            self._submitter.cleanup()

    def status(self) -> dict[str, Any]:
        """Counts of tasks by state and of workers, as `PyMW_Master.get_status()`."""
        return self._master.status()

    def _check_open(self) -> None:
        if self._shutdown_called:
            raise RuntimeError("cannot schedule new futures after shutdown")
        if _interpreter_exiting:
            raise RuntimeError("cannot schedule new futures after interpreter shutdown")

    def _travels_pickled(self, fn: Callable) -> bool:
        """No code to send (a bound method, a partial, a callable object): with pickles,
        the callable travels as the first argument of call_pickled."""
        return self._master.codec == contract.CODEC_PICKLE and not _has_code(fn)

    def _submit(self, fn: Callable, args: tuple, kwargs: dict | None) -> concurrent.futures.Future:
        self._check_open()
        if self._travels_pickled(fn):
            fn, args = call_pickled, (fn, *args)
        try:
            task = self._submitter.submit(
                fn,
                args,
                self._modules,
                self._dep_funcs,
                self._data_files,
                kwargs=kwargs,
                with_future=True,
                collect=False,
            )
        except UnpicklableArgumentsError as error:
            return _future_of(error)
        return _future_of(task)


def _future_of(queued: PyMW_Task | UnpicklableArgumentsError) -> concurrent.futures.Future:
    """A queued task's future; for arguments that did not pickle, a future failed with
    pickle's own error, as ProcessPoolExecutor's would be."""
    if isinstance(queued, UnpicklableArgumentsError):
        failed: concurrent.futures.Future = concurrent.futures.Future()
        failed.set_exception(queued.__cause__)
        return failed
    assert queued.future is not None
    return queued.future


def _with_callable_column(fn: Callable, chunks: Iterable[tuple]) -> Iterator[tuple]:
    """Chunks for call_pickled: `fn` itself as the first column, once per row."""
    for columns in chunks:
        yield ([fn] * len(columns[0]), *columns)


def _has_code(fn: Callable) -> bool:
    """Whether `fn` travels as code (by reference or by source), not as an object."""
    return inspect.isfunction(fn) or inspect.isbuiltin(fn) or inspect.isclass(fn)


def _check_pool_options(
    max_workers: int | None, initializer: Callable | None, max_tasks_per_child: int | None
) -> None:
    """ProcessPoolExecutor's checks, with its exception types and messages."""
    if max_workers is not None and max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    if initializer is not None and not callable(initializer):
        raise TypeError("initializer must be a callable")
    if max_tasks_per_child is not None:
        if not isinstance(max_tasks_per_child, int):
            raise TypeError("max_tasks_per_child must be an integer")
        if max_tasks_per_child <= 0:
            raise ValueError("max_tasks_per_child must be >= 1")


def _engine(interface: Interface | type | None, max_workers: int | None) -> Interface:
    """The engine: `interface`, or one made with `max_workers` workers from an interface
    class (the generic one by default)."""
    if interface is None:
        from .interfaces.generic import GenericInterface

        interface = GenericInterface
    if isinstance(interface, type):
        return interface(num_workers=max_workers or os.cpu_count() or 1)
    if max_workers is not None and max_workers != interface.num_workers:
        raise ValueError(
            f"max_workers={max_workers}, but the interface runs {interface.num_workers} "
            "workers: give the number to one of them only"
        )
    return interface


def _argument_columns(iterables: tuple[Iterable, ...], chunksize: int) -> Iterator[list[list]]:
    """The rows of `zip(*iterables)`, `chunksize` at a time, as one list per iterable:
    a chunk's arguments travel as a few flat lists rather than one tuple per call."""
    iterators = [iter(iterable) for iterable in iterables]
    while iterators:
        columns = [list(itertools.islice(iterator, chunksize)) for iterator in iterators]
        rows = min(len(column) for column in columns)
        if rows:
            yield [column[:rows] for column in columns] if rows < chunksize else columns
        if rows < chunksize:
            return


class _MapResults(itertools.chain):
    """`Executor.map`'s iterator: each chunk's results in order, keeping no reference to
    those yielded; `close()` (or dropping it) cancels the chunks not reached, as closing
    ProcessPoolExecutor.map's generator does.

    A chain over the chunks, not a generator: its items come out of C iterators (chain,
    starmap over `list.pop`) with no Python frame resumed per item, which cost the master
    more than a short task itself; only the chunks' generator runs Python, once a chunk.
    """

    __slots__ = ("_chunks",)

    def __new__(cls, chunks: Generator[Iterator, None, None]) -> _MapResults:
        results = cls.from_iterable(chunks)
        results._chunks = chunks
        return results

    def close(self) -> None:
        """Cancel the chunks not reached; the rest of the current one is dropped."""
        self._chunks.close()
        collections.deque(self, maxlen=0)  # the chunks are closed: this ends the chain


def _chunks_in_order(
    futures: list[concurrent.futures.Future], deadline: float | None
) -> Generator[Iterator, None, None]:
    """Per chunk, an iterator that pops its results off the front; `futures` keeps only
    the chunks not reached yet, cancelled on any exit (an error, a timeout, a close, or
    the iterator dropped)."""
    futures.reverse()
    try:
        while futures:
            remaining = None if deadline is None else deadline - time.monotonic()
            results = _result_or_cancel(futures.pop(), remaining)
            results.reverse()
            yield itertools.starmap(results.pop, itertools.repeat((), len(results)))
    finally:
        for future in futures:
            future.cancel()


def _result_or_cancel(future: concurrent.futures.Future, timeout: float | None) -> list:
    try:
        return future.result(timeout)
    finally:
        future.cancel()
