"""Errors a PyMW user sees, each meant to be read on one line.

`UserError` and its subclasses are mistakes the user can fix (a bad option, a missing
directory, an engine that is not installed). Command-line entry points print them as
`<prog>: <message>` and exit with `exit_code`, never with a traceback.
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor


class PyMWError(Exception):
    """Base class of PyMW's own errors."""


class UserError(PyMWError):
    """A mistake in how PyMW was called; `str(error)` says what is wrong and the fix."""

    exit_code = 2


class TaskError(PyMWError):
    """A task raised an exception on its worker that has no safe local equivalent.

    `remote_type` is the exception's class name on the worker; the worker's traceback is
    chained as `__cause__` (a `RemoteTraceback`).
    """

    def __init__(self, message: str, remote_type: str = "Exception") -> None:
        super().__init__(message)
        self.remote_type = remote_type


class MalformedResultError(PyMWError):
    """A worker sent back an output that does not follow the worker contract.

    Results can come from machines nobody controls, so this fails only that one task.
    """


class BrokenMasterError(PyMWError, BrokenExecutor):
    """The master's engine failed; pending tasks were failed and no new ones are accepted.

    A `concurrent.futures.BrokenExecutor`, as ProcessPoolExecutor's BrokenProcessPool is
    (a failed initializer breaks both the same way).
    """


def _worker_lost_error() -> type[PyMWError]:
    # concurrent.futures.process imports multiprocessing, which `import pymw` does not
    # otherwise need; so the class is made on first use, as concurrent.futures makes its
    # own executors (a module __getattr__).
    from concurrent.futures.process import BrokenProcessPool

    class WorkerLostError(PyMWError, BrokenProcessPool):
        """The worker running a task died or vanished before it produced an output.

        A `concurrent.futures.process.BrokenProcessPool`, which is what ProcessPoolExecutor
        raises for a crashed worker's task (pymw fails only that task, not the executor).
        """

    WorkerLostError.__module__, WorkerLostError.__qualname__ = __name__, "WorkerLostError"
    return WorkerLostError


def __getattr__(name: str) -> type:
    if name == "WorkerLostError":
        globals()[name] = kind = _worker_lost_error()
        return kind
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class RemoteTraceback(Exception):
    """The worker's formatted traceback, chained as the cause of a task's error.

    Its text opens with the worker and host it came from, as mpi4py's does, since on a
    cluster or a grid "which machine" is the first question.
    """

    def __init__(
        self,
        traceback_text: str,
        *,
        worker: str | None = None,
        host: str | None = None,
        pid: int | None = None,
    ) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text
        self.worker, self.host, self.pid = worker, host, pid

    @property
    def header(self) -> str:
        """The first line, e.g. `Traceback from worker local-1 on host node7 (pid 4242):`."""
        parts = ["Traceback from"]
        parts += [f"worker {self.worker}"] if self.worker else ["the worker"]
        parts += [f"on host {self.host}"] if self.host else []
        parts += [f"(pid {self.pid})"] if self.pid is not None else []
        return " ".join(parts) + ":"

    def __str__(self) -> str:
        return f'\n"""\n{self.header}\n{self.traceback_text.rstrip()}\n"""'
