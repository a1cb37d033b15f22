"""PyMW's classic face: `PyMW_Master` and `PyMW_MapReduce`, as in PyMW 0.4.

Programs written for PyMW 0.4 run after only Python 3 syntax changes::

    from pymw import pymw, interfaces
    options, args = interfaces.parse_options()
    master = pymw.PyMW_Master(interface=interfaces.get_interface(options))
    task = master.submit_task(monte_pi, input_data=(seed, n), modules=("random",))
    task, result = master.get_result(task)

The machinery underneath is `pymw.master.Master`, shared with `pymw.Executor`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .errors import UserError
from .executor import Executor
from .interfaces.base import Interface
from .master import SchedulerFunc
from .signing import SigningKeySource
from .submission import start_master
from .tasks import PyMW_Task, TaskState

__all__ = ["Executor", "PyMW_MapReduce", "PyMW_Master", "PyMW_Task", "TaskState"]


class PyMW_Master:
    """Submit tasks to an interface (default: the generic one on all local cores).

    `sign_key` (a private key file or a loaded Ed25519 key) signs every task script, for
    workers built to refuse unsigned ones (docs/signing.md). Without it, the key that
    `interfaces.get_interface` loaded from `--sign-key` is used, if any.
    """

    def __init__(
        self,
        interface: Interface | None = None,
        loglevel: int = logging.CRITICAL,
        delete_files: bool = True,
        scheduler_func: SchedulerFunc | None = None,
        *,
        max_retries: int = 0,
        show_progress: bool | None = None,
        sign_key: SigningKeySource | None = None,
    ) -> None:
        _configure_logging(loglevel)
        self._submitter = start_master(
            interface,
            sign_key,
            scheduler_func=scheduler_func,
            max_retries=max_retries,
            delete_files=delete_files,
            show_progress=show_progress,
        )
        self._master = self._submitter.master
        self._submitted: set[int] = set()

    @property
    def interface(self) -> Interface:
        return self._master.interface

    def submit_task(
        self,
        executable: Callable | str | os.PathLike,
        input_data: tuple | None = None,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str | os.PathLike] = (),
        input_from_file: bool = False,
    ) -> PyMW_Task:
        """Queue `executable(*input_data)` on a worker; returns the task at once.

        `modules` are imported on the worker, `dep_funcs` are defined there, and
        `data_files` are unpacked in its working directory. A script path instead of a
        function is run as `<script> <input> <output>` through the worker contract.
        """
        task = self._submitter.submit(
            executable, input_data, modules, dep_funcs, data_files, input_from_file
        )
        self._submitted.add(task.task_id)
        return task

    def get_result(
        self, task: PyMW_Task | Sequence[PyMW_Task] | None = None, blocking: bool = True
    ) -> tuple[PyMW_Task | None, Any]:
        """`(task, result)` for a finished task: any (None), this one, or one of a list.

        Non-blocking with nothing finished returns `(None, None)`. A task that failed
        re-raises its error here, with the worker's traceback chained as the cause.
        """
        among = None if task is None else self._checked(task)
        done = self._master.next_done(among, blocking)
        if done is None:
            return None, None
        if done.error is not None:
            raise done.error
        return done, done.result

    def get_progress(self, task: PyMW_Task | Sequence[PyMW_Task]) -> float | list[float]:
        """Fraction done, 0.0 to 1.0: one float for a task, a list for a list of tasks."""
        tasks = self._checked(task)
        progress = [item.progress for item in tasks]
        return progress if isinstance(task, (list, tuple)) else progress[0]

    def get_status(self) -> dict[str, Any]:
        """Counts of tasks by state, workers total/active, and the interface's own status."""
        return self._master.status()

    def cleanup(self) -> None:
        """Stop the workers and remove temporary files, as PyMW 0.4 did.

        Queued tasks are cancelled and running ones abandoned: leaving a `with` block on an
        error must not wait for the rest of the batch. (BOINC workunits stay on the
        project; a rerun of the program collects them.)
        """
        self._master.terminate()
        self._submitter.cleanup()

    def __enter__(self) -> PyMW_Master:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def _checked(self, task: PyMW_Task | Sequence[PyMW_Task]) -> list[PyMW_Task]:
        tasks = list(task) if isinstance(task, (list, tuple)) else [task]
        for item in tasks:
            if not isinstance(item, PyMW_Task) or item.task_id not in self._submitted:
                raise UserError(f"{item!r} is not a task submitted to this master")
        return tasks


class PyMW_MapReduce:
    """Map a function over chunks of data on workers, then reduce the results there too."""

    def __init__(self, master: PyMW_Master) -> None:
        self._master = master

    @staticmethod
    def _data_split(data: Sequence, num: int) -> list:
        """`num` contiguous chunks whose sizes differ by at most one."""
        size, extra = divmod(len(data), num)
        chunks, start = [], 0
        for index in range(num):
            end = start + size + (1 if index < extra else 0)
            chunks.append(data[start:end])
            start = end
        return chunks

    def submit_task_mapreduce(
        self,
        exec_map: Callable,
        exec_reduce: Callable,
        num_worker: int = 1,
        input_data: Sequence | None = None,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        red_worker: int = -1,
        file_input: bool = False,
    ) -> PyMW_Task:
        """A task whose result is the list of reduce results.

        `input_data` is split into `num_worker` chunks, each mapped by `exec_map(chunk)`.
        With `red_worker=-1` each map result is reduced on its own; otherwise the map results
        (lists) are joined and split into `red_worker` chunks for `exec_reduce(chunk)`.
        With `file_input=True`, `input_data` names files and each map gets a list of
        `[path, start, end]` byte ranges of about equal total size.
        """
        if num_worker < 1 or red_worker == 0 or red_worker < -1:
            raise UserError("num_worker must be at least 1 and red_worker -1 or at least 1")
        data = list(input_data or [])
        chunks = (
            _byte_ranges(data, num_worker) if file_input else self._data_split(data, num_worker)
        )
        modules, dep_funcs = tuple(modules), tuple(dep_funcs)
        core = self._master._master
        name = f"{exec_map.__name__}_{exec_reduce.__name__}_MR"
        main_task = core.submit(None, name=name)
        self._master._submitted.add(main_task.task_id)
        run = _MapReduceRun(
            self._master, core, main_task, exec_reduce, modules, dep_funcs, red_worker, num_worker
        )
        for index, chunk in enumerate(chunks):
            run.watch_map(index, self._submit(exec_map, (chunk,), modules, dep_funcs))
        return main_task

    def _submit(self, function, args, modules, dep_funcs) -> PyMW_Task:
        return self._master._submitter.submit(function, args, modules, dep_funcs, collect=False)


class _MapReduceRun:
    """Drives one MapReduce from task callbacks: no thread waits for it.

    Results keep the chunks' order, whatever order the tasks end in: the reduce results
    are those of map chunk 0, 1... (`red_worker=-1`), or of the map results joined in
    chunk order and split again. (PyMW 0.4 took them as tasks ended, so a rerun could
    give another answer.)
    """

    def __init__(
        self, facade, core, main_task, exec_reduce, modules, dep_funcs, red_worker, num_maps
    ) -> None:
        self.facade, self.core, self.main_task = facade, core, main_task
        self.exec_reduce, self.modules, self.dep_funcs = exec_reduce, modules, dep_funcs
        self.red_worker = red_worker
        self.maps_left = num_maps
        self.mapped: list = [None] * num_maps
        self.reduces_left = num_maps if red_worker == -1 else red_worker
        self.results: list = [None] * self.reduces_left

    def watch_map(self, index: int, task: PyMW_Task) -> None:
        self.core.add_done_callback(task, functools.partial(self.map_done, index))

    def map_done(self, index: int, task: PyMW_Task) -> None:
        if self._failed(task):
            return
        self.maps_left -= 1
        if self.red_worker == -1:
            self._reduce(index, task.result)
            return
        self.mapped[index] = list(task.result)
        if self.maps_left == 0:
            joined = [item for result in self.mapped for item in result]
            for reduce_index, chunk in enumerate(
                PyMW_MapReduce._data_split(joined, self.red_worker)
            ):
                self._reduce(reduce_index, chunk)

    def _reduce(self, index: int, chunk) -> None:
        task = self.facade._submitter.submit(
            self.exec_reduce, (chunk,), self.modules, self.dep_funcs, collect=False
        )
        self.core.add_done_callback(task, functools.partial(self.reduce_done, index))

    def reduce_done(self, index: int, task: PyMW_Task) -> None:
        if self._failed(task):
            return
        self.results[index] = task.result
        self.reduces_left -= 1
        if self.reduces_left == 0:
            self.core.finish_task(self.main_task, self.results)

    def _failed(self, task: PyMW_Task) -> bool:
        if task.error is None:
            return False
        if not self.main_task.state.done:
            self.core.finish_task(self.main_task, error=task.error)
        return True


def _byte_ranges(paths: list, num: int) -> list[list[list]]:
    """Split files into `num` lists of [path, start, end] ranges of about equal bytes.

    The paths are made absolute: a worker runs in a folder of its own, where the master's
    relative paths name nothing (the files must be on a filesystem the workers share)."""
    names = [
        os.path.abspath(item[0] if isinstance(item, (list, tuple)) else item) for item in paths
    ]
    try:
        sizes = [os.path.getsize(name) for name in names]
    except OSError as error:
        raise UserError(f"file_input: cannot read {error.filename}: {error.strerror}") from None
    share = PyMW_MapReduce._data_split(range(sum(sizes)), num)
    targets = [len(part) for part in share]
    chunks: list[list[list]] = [[] for _ in range(num)]
    index, room = 0, targets[0]
    for name, size in zip(names, sizes, strict=True):
        position = 0
        while position < size:
            while room == 0 and index < num - 1:
                index += 1
                room = targets[index]
            take = min(room, size - position) if index < num - 1 else size - position
            chunks[index].append([name, position, position + take])
            position += take
            room -= take
    return chunks


def _configure_logging(level: int) -> None:
    """Apply `loglevel`, unless -v (parse_options) already asked for more detail."""
    logger = logging.getLogger("pymw")
    if logger.level == logging.NOTSET or level < logger.level:
        logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
