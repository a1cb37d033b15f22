"""The task record the master keeps for every submitted task."""

from __future__ import annotations

import enum
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .interfaces.base import Program


class TaskState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        return self in (TaskState.FINISHED, TaskState.FAILED, TaskState.CANCELLED)


# The prints of a task that printed nothing: one pair shared by all such tasks.
_NO_PRINTS = ("", "")


@dataclass(eq=False, slots=True)
class PyMW_Task:
    """One submitted task: its program, its input, and what became of it.

    100,000 queued tasks must cost no more than ProcessPoolExecutor's work items. Each slot
    is 8 bytes of every queued task, and a task's memory grows in steps of 16 bytes: these
    12 slots keep it at 128. So: no slot for what can be derived (the name, made when asked
    for unless the submitter gave one; the progress, from the state; whether get_result
    collects it, from its future and callbacks), one slot for the result or the error (a
    task has one or the other), one for both prints, no callback list unless callbacks are
    to come, and the input bytes dropped once the task is done, since no retry can need
    them any more.
    """

    task_id: int
    given_name: str | None
    program: Program | None
    input_bytes: bytes = b""
    data_zip: Path | None = None
    state: TaskState = TaskState.QUEUED
    attempts: int = 0
    result_or_error: Any = None  # the error if the task failed, else its result
    stdout_stderr: tuple[str, str] = _NO_PRINTS
    worker: Any = None
    future: Future | None = None
    # Callbacks that take the result; [] from submit on for a task submitted with
    # collect=False and no future, whose submitter adds its callbacks next.
    callbacks: list | None = None

    @property
    def result(self) -> Any:
        return None if self.state is TaskState.FAILED else self.result_or_error

    @property
    def error(self) -> BaseException | None:
        return self.result_or_error if self.state is TaskState.FAILED else None

    @property
    def stdout(self) -> str:
        return self.stdout_stderr[0]

    @property
    def stderr(self) -> str:
        return self.stdout_stderr[1]

    @property
    def collect(self) -> bool:
        """Whether get_result hands the task out: no future or callbacks take its result."""
        return self.future is None and self.callbacks is None

    @property
    def name(self) -> str:
        if self.given_name is not None:
            return self.given_name
        return f"{self.program.name if self.program else 'task'}_{self.task_id}"

    @name.setter
    def name(self, value: str) -> None:
        self.given_name = value

    @property
    def progress(self) -> float:
        """1.0 once the task has a result or an error, 0.0 before (and if cancelled)."""
        return 1.0 if self.state in (TaskState.FINISHED, TaskState.FAILED) else 0.0

    def __repr__(self) -> str:
        return f"<PyMW_Task {self.name} {self.state.value}>"

    def __str__(self) -> str:
        return self.name
