"""`pymw.Executor`: PyMW as a `concurrent.futures.Executor`.

    with pymw.Executor() as pool:                       # all local cores
        futures = [pool.submit(simulate, seed) for seed in range(100)]
        for future in concurrent.futures.as_completed(futures):
            print(future.result())

The same engines as `PyMW_Master` (`Executor(interface=MPIInterface())` and so on), the
same worker contract, standard Futures. A task's error is re-raised by `result()` with the
worker's traceback chained as `__cause__`, as ProcessPoolExecutor does.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any

from .errors import UserError
from .interfaces.base import Interface
from .master import SchedulerFunc
from .signing import SigningKeySource
from .submission import start_master


class Executor(concurrent.futures.Executor):
    """Run functions on PyMW workers and return standard Futures.

    `sign_key` signs every task script, as in `PyMW_Master` (docs/signing.md).
    """

    def __init__(
        self,
        interface: Interface | None = None,
        *,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str] = (),
        max_retries: int = 0,
        scheduler_func: SchedulerFunc | None = None,
        show_progress: bool | None = False,
        sign_key: SigningKeySource | None = None,
    ) -> None:
        self._submitter = start_master(
            interface,
            sign_key,
            scheduler_func=scheduler_func,
            max_retries=max_retries,
            show_progress=show_progress,
        )
        self._master = self._submitter.master
        self._modules, self._dep_funcs = tuple(modules), tuple(dep_funcs)
        self._data_files = tuple(data_files)

    @property
    def interface(self) -> Interface:
        return self._master.interface

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        if kwargs:
            raise UserError(
                "PyMW tasks take positional arguments only; pass them in order "
                f"(got keywords {', '.join(sorted(kwargs))})"
            )
        task = self._submitter.submit(
            fn,
            args,
            self._modules,
            self._dep_funcs,
            self._data_files,
            with_future=True,
            collect=False,
        )
        assert task.future is not None
        return task.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._master.shutdown(wait=wait, cancel_pending=cancel_futures)
        if wait:
            self._submitter.cleanup()

    def status(self) -> dict[str, Any]:
        """Counts of tasks by state and of workers, as `PyMW_Master.get_status()`."""
        return self._master.status()
