"""Turn what a user submits (a function or script, its arguments, files) into a task.

Shared by both faces, `PyMW_Master.submit_task` and `Executor.submit`. Programs and data
archives are built once and reused: submitting 100,000 tasks of one function reads its
source once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyboinc import contract

from .data_files import DataArchives
from .errors import UserError
from .interfaces.base import Interface, Program
from .master import Master
from .programs import program_from_function, program_from_script, signed
from .signing import SigningKeySource, resolve_signing_key
from .tasks import PyMW_Task

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class Submitter:
    """Builds and submits tasks for one master; owns the files it makes for them.

    With a `signing_key`, every program's script is signed once, when it is built.
    """

    def __init__(self, master: Master, signing_key: Ed25519PrivateKey | None = None) -> None:
        self.master = master
        self.signing_key = signing_key
        self._programs: dict[tuple, Program] = {}
        self._files_dir: Path | None = None
        self._archives: DataArchives | None = None

    def submit(
        self,
        executable: Callable | str | os.PathLike,
        input_data: Any = None,
        modules: Iterable[str] = (),
        dep_funcs: Iterable[Callable] = (),
        data_files: Iterable[str | os.PathLike] = (),
        input_from_file: bool = False,
        *,
        with_future: bool = False,
        collect: bool = True,
    ) -> PyMW_Task:
        program = self.program(executable, tuple(modules), tuple(dep_funcs))
        data_zip = self._data_archive(tuple(data_files))
        input_bytes = self._input_bytes(input_data, input_from_file, data_zip)
        return self.master.submit(
            program, input_bytes, data_zip=data_zip, with_future=with_future, collect=collect
        )

    def program(self, executable, modules: tuple, dep_funcs: tuple) -> Program:
        key = (executable, modules, dep_funcs)
        try:
            return self._programs[key]
        except KeyError:
            pass
        except TypeError:
            raise UserError(
                "modules and dep_funcs must be sequences of names and functions"
            ) from None
        if callable(executable):
            program = program_from_function(executable, modules, dep_funcs)
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

    def _data_archive(self, data_files: tuple) -> Path | None:
        if not data_files:
            return None
        if self._archives is None:
            self._files_dir = Path(tempfile.mkdtemp(prefix="pymw-data-"))
            self._archives = DataArchives(self._files_dir)
        return self._archives.archive(data_files)

    @staticmethod
    def _input_bytes(input_data: Any, input_from_file: bool, data_zip: Path | None) -> bytes:
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
        try:
            return contract.encode_input(args, data_zip.name if data_zip else None)
        except TypeError as error:
            raise UserError(f"input_data cannot be sent to a worker: {error}") from None

    def cleanup(self) -> None:
        if self._files_dir is not None and self.master.delete_files:
            shutil.rmtree(self._files_dir, ignore_errors=True)


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
