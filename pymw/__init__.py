"""PyMW: one master-worker Python program, from a laptop to a cluster to a BOINC grid.

`from pymw import pymw, interfaces` gives PyMW 0.4's API (`pymw.PyMW_Master`);
`pymw.Executor` is the same machinery as a `concurrent.futures.Executor`.
"""

from .errors import (
    BrokenMasterError,
    MalformedResultError,
    PyMWError,
    RemoteTraceback,
    TaskError,
    UserError,
    WorkerLostError,
)
from .executor import Executor
from .pymw import PyMW_MapReduce, PyMW_Master, PyMW_Task, TaskState

__version__ = "1.0.0.dev0"

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
