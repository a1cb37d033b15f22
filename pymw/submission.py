"""Turn what a user submits (a function or script, its arguments, files) into a task.

Shared by both faces, `PyMW_Master.submit_task` and `Executor.submit`. Programs and data
archives are built once and reused: submitting 100,000 tasks of one function reads its
source once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyboinc import contract

from .data_files import DataArchives
from .errors import UserError
from .interfaces.base import (
    InProcessInput,
    Interface,
    Program,
    SupportsWorkerSetup,
    WorkerSetup,
)
from .master import Master
from .programs import program_from_function, program_from_script, signed
from .signing import SigningKeySource, resolve_signing_key
from .tasks import PyMW_Task

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


# Executor.map's chunks go to the master in batches: the first small, so that the workers
# start at once, the next ones growing to MAP_BATCH.
MAP_FIRST_BATCH = 8
MAP_BATCH = 32


class UnpicklableArgumentsError(UserError):
    """codec="pickle": a task's arguments did not pickle. `pymw.Executor` fails the task's
    future with pickle's own error (the `__cause__`), as ProcessPoolExecutor does."""


class Submitter:
    """Builds and submits tasks for one master; owns the files it makes for them.

    With a `signing_key`, every program's script is signed once, when it is built.
    """

    def __init__(self, master: Master, signing_key: Ed25519PrivateKey | None = None) -> None:
        self.master = master
        self.signing_key = signing_key
        self._programs: dict[tuple, Program] = {}
        self._archives: DataArchives | None = None
        self._remove_files: weakref.finalize | None = None

    def submit(
        self,
        executable: Callable | str | os.PathLike,
        input_data: Any = None,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str | os.PathLike] = (),
        input_from_file: bool = False,
        *,
        kwargs: dict[str, Any] | None = None,
        with_future: bool = False,
        collect: bool = True,
    ) -> PyMW_Task:
        """Queue a task."""
        program = self.program(executable, tuple(modules), tuple(dep_funcs))
        data_zip = self._data_archive(tuple(data_files))
        input_bytes = self._input_bytes(program, input_data, input_from_file, data_zip, kwargs)
        return self.master.submit(
            program, input_bytes, data_zip=data_zip, with_future=with_future, collect=collect
        )

    def submit_map(
        self,
        function: Callable,
        chunks: Iterable[tuple],
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str | os.PathLike] = (),
    ) -> list[PyMW_Task | UnpicklableArgumentsError]:
        """Queue `Executor.map`'s chunks (argument columns), each a task with a future
        that runs the function over each row (see `program_from_function`).

        They go to the master in batches, one lock and one wakeup each, so the first
        ones run while the next are encoded. A chunk whose arguments do not pickle has
        its error in its place in the list, instead of a task.
        """
        program = self.program(function, tuple(modules), tuple(dep_funcs), True)
        data_zip = self._data_archive(tuple(data_files))
        queued: list[PyMW_Task | UnpicklableArgumentsError] = []
        inputs: list[bytes] = []

        def send() -> None:
            if inputs:
                queued.extend(
                    self.master.submit_many(
                        program, inputs, data_zip=data_zip, with_future=True, collect=False
                    )
                )
                inputs.clear()
                # Let the dispatcher, woken by this batch, take the GIL and send it out
                # while the next batch is encoded; else it waits for this thread's switch
                # interval (5 ms) while the workers idle.
                time.sleep(0)

        for columns in chunks:
            try:
                inputs.append(self._input_bytes(program, columns, False, data_zip))
            except UnpicklableArgumentsError as error:
                send()
                queued.append(error)
            if len(inputs) >= min(MAP_BATCH, MAP_FIRST_BATCH + len(queued)):
                send()
        send()
        return queued

    def program(
        self, executable, modules: tuple, dep_funcs: tuple, map_chunks: bool = False
    ) -> Program:
        key = (executable, modules, dep_funcs, map_chunks)
        try:
            return self._programs[key]
        except KeyError:
            pass
        except TypeError:
            raise UserError(
                "modules and dep_funcs must be sequences of names and functions"
            ) from None
        if callable(executable):
            program = program_from_function(executable, modules, dep_funcs, map_chunks=map_chunks)
        elif isinstance(executable, (str, os.PathLike)):
            program = program_from_script(executable)
        else:
            raise UserError(
                f"a task must be a function or a script path, got {type(executable).__name__}"
            )
        if self.signing_key is not None:
            program = signed(program, self.signing_key)
        self._programs[key] = program
        return program

    def configure_workers(
        self,
        initializer: Callable | None,
        initargs: tuple,
        max_tasks: int | None,
        modules: tuple = (),
        dep_funcs: tuple = (),
    ) -> None:
        """ProcessPoolExecutor's `initializer(*initargs)` and `max_tasks_per_child`,
        for engines whose workers outlive a task; before any task is submitted."""
        if initializer is None and max_tasks is None:
            return
        interface = self.master.interface
        if not isinstance(interface, SupportsWorkerSetup):
            raise UserError(
                f"{type(interface).__name__} starts a new process for every task, so it "
                "takes no initializer or max_tasks_per_child; use the generic or MPI interface"
            )
        program = None if initializer is None else self.program(initializer, modules, dep_funcs)
        initializer_input = self._input_bytes(program, tuple(initargs), False, None)
        interface.configure_workers(WorkerSetup(program, initializer_input, max_tasks))

    def _data_archive(self, data_files: tuple) -> Path | None:
        if not data_files:
            return None
        if self._archives is None:
            files_dir = Path(tempfile.mkdtemp(prefix="pymw-data-"))
            self._archives = DataArchives(files_dir)
            if self.master.delete_files:
                # Removed once the master is gone (its tasks cannot need them any more),
                # by cleanup(), or at exit: an executor shut down without waiting, or
                # dropped, must not leave them behind.
                self._remove_files = weakref.finalize(
                    self.master, shutil.rmtree, files_dir, ignore_errors=True
                )
        return self._archives.archive(data_files)

    def _input_bytes(
        self,
        program: Program | None,
        input_data: Any,
        input_from_file: bool,
        data_zip: Path | None,
        kwargs: dict[str, Any] | None = None,
    ) -> bytes:
        if input_from_file:
            try:
                return Path(input_data).read_bytes()
            except (OSError, TypeError) as error:
                reason = getattr(error, "strerror", None) or error
                raise UserError(f"input_from_file: cannot read {input_data!r}: {reason}") from None
        if input_data is None:
            args: tuple = ()
        elif isinstance(input_data, tuple):
            args = input_data
        else:
            raise UserError(
                f"input_data must be a tuple of arguments, e.g. (x,) for one argument; "
                f"got {type(input_data).__name__}"
            )
        if getattr(self.master.interface, "calls_in_process", False):
            return InProcessInput.of(args, kwargs)  # nothing travels: nothing to encode
        pickled = self.master.codec == contract.CODEC_PICKLE
        try:
            return contract.encode_input(
                args,
                data_zip.name if data_zip else None,
                kwargs,
                # The program's allow-list: the only classes that may travel as records.
                classes=getattr(program, "classes", None) or {},
                codec=self.master.codec,
            )
        except Exception as error:  # pickling runs the arguments' own __reduce__
            if pickled:
                raise UnpicklableArgumentsError(
                    f"the task's arguments cannot be pickled: {type(error).__name__}: {error}"
                ) from error
            if not isinstance(error, TypeError):
                raise
            raise UserError(f"the task's arguments cannot be sent to a worker: {error}") from None

    def cleanup(self) -> None:
        """Remove the data archives made for this master's tasks (they must be done)."""
        if self._remove_files is not None:
            self._remove_files()


def start_master(
    interface: Interface | None, sign_key: SigningKeySource | None, **master_options: Any
) -> Submitter:
    """The master and submitter behind both faces: the generic interface by default, and
    a signing key checked before any engine is set up."""
    signing_key = resolve_signing_key(sign_key, interface)
    if interface is None:
        from .interfaces.generic import GenericInterface

        interface = GenericInterface()
    return Submitter(Master(interface, **master_options), signing_key)
