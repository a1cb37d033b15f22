"""Errors a PyMW user sees, each meant to be read on one line.

`UserError` and its subclasses are mistakes the user can fix (a bad option, a missing
directory, an engine that is not installed). Command-line entry points print them as
`<prog>: <message>` and exit with `exit_code`, never with a traceback.
"""

from __future__ import annotations


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


class WorkerLostError(PyMWError):
    """The worker running a task died or vanished before it produced an output."""


class MalformedResultError(PyMWError):
    """A worker sent back an output that does not follow the worker contract.

    Results can come from machines nobody controls, so this fails only that one task.
    """


class BrokenMasterError(PyMWError):
    """The master's engine failed; pending tasks were failed and no new ones are accepted."""


class RemoteTraceback(Exception):
    """The worker's formatted traceback, chained as the cause of a task's error."""

    def __init__(self, traceback_text: str) -> None:
        super().__init__(traceback_text)
        self.traceback_text = traceback_text

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback_text.rstrip()}\n"""'
