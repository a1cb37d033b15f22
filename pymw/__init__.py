"""PyMW: one master-worker Python program, from a laptop to a cluster to a BOINC grid.

`from pymw import pymw, interfaces` gives PyMW 0.4's API (`pymw.PyMW_Master`);
`pymw.Executor` is the same machinery as a `concurrent.futures.Executor`.
"""

import importlib

from . import errors
from .errors import (
    BrokenMasterError,
    MalformedResultError,
    PyMWError,
    RemoteTraceback,
    TaskError,
    UserError,
)
from .executor import Executor
from .tasks import PyMW_Task, TaskState

__version__ = "1.0.0.dev0"

# PyMW 0.4's face, imported on first use: a program on `pymw.Executor` does not need it.
_FROM_PYMW = frozenset({"PyMW_MapReduce", "PyMW_Master"})


def __getattr__(name: str) -> object:
    if name == "WorkerLostError":  # made on first use: see pymw.errors
        return errors.WorkerLostError
    if name in _FROM_PYMW or name == "pymw":
        face = importlib.import_module(f"{__name__}.pymw")
        return face if name == "pymw" else getattr(face, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BrokenMasterError",
    "Executor",
    "MalformedResultError",
    "PyMWError",
    "PyMW_MapReduce",
    "PyMW_Master",
    "PyMW_Task",
    "RemoteTraceback",
    "TaskError",
    "TaskState",
    "UserError",
    "WorkerLostError",
]
