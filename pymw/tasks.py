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


@dataclass(eq=False, slots=True)
class PyMW_Task:
    """One submitted task: its program, its input, and what became of it.

    100,000 queued tasks must cost no more than ProcessPoolExecutor's work items: so slots,
    a name made when asked for (unless the submitter gave one), no callback list until a
    callback comes, and the input bytes dropped once the task is done, since no retry can
    need them any more.
    """

    task_id: int
    given_name: str | None
    program: Program | None
    input_bytes: bytes = b""
    data_zip: Path | None = None
    state: TaskState = TaskState.QUEUED
    attempts: int = 0
    result: Any = None
    error: BaseException | None = None
    stdout: str = ""
    stderr: str = ""
    worker: Any = None
    progress: float = 0.0
    future: Future | None = None
    collect: bool = True  # kept for get_result; False when a future or callback takes it
    callbacks: list | None = None
    submit_time: float = 0.0
    start_time: float | None = None
    finish_time: float | None = None

    @property
    def name(self) -> str:
        if self.given_name is not None:
            return self.given_name
        return f"{self.program.name if self.program else 'task'}_{self.task_id}"

    @name.setter
    def name(self, value: str) -> None:
        self.given_name = value

    def __repr__(self) -> str:
        return f"<PyMW_Task {self.name} {self.state.value}>"

    def __str__(self) -> str:
        return self.name
