"""What every engine implements, and the records that cross between master and engine.

The master owns tasks, ordering, retries, progress and status. An engine (interface) only
runs jobs on its workers and reports completions; it speaks the worker contract
(`pyboinc.contract`) to the workers. The master calls an engine from one thread, its
dispatcher, except for `wakeup`, which any thread may call::

    master dispatcher                     engine
    -----------------                     ------
    idle_workers()           ──────────▶  workers with room for a job now
    execute(job, worker)     ──────────▶  start the job (or buffer it; flush in wait)
    wait(timeout)            ◀──────────  completions, [] on timeout or wakeup()
    get_status()/cleanup()

Engines with long-lived workers (generic, MPI) also take a `WorkerSetup` before their
first job (`SupportsWorkerSetup`): ProcessPoolExecutor's initializer and
max_tasks_per_child.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pyboinc.contract import CODEC_JSON, Arguments, Outcome


class InProcessInput(bytes):
    """A task's input for an engine that calls task functions in the master's own
    process (the grid simulator, whose `calls_in_process` is True): the arguments as
    submitted, neither encoded nor decoded, since nothing travels. Empty bytes otherwise.
    """

    arguments: Arguments

    @classmethod
    def of(cls, args: tuple, kwargs: dict[str, Any] | None) -> InProcessInput:
        made = cls()
        made.arguments = Arguments(args)
        if kwargs:
            made.arguments.kwargs = dict(kwargs)
        return made


@dataclass(frozen=True, eq=False)
class Program:
    """A task function (or user script) made into code a worker can run.

    `code` is the user part (imports, dependencies, the function) that in-process workers
    execute; `script` is the self-contained program that follows the worker contract.
    Built once per distinct function and shared by all its tasks.
    """

    name: str
    function_name: str | None
    code: str
    script: str
    digest: str


@dataclass(eq=False, slots=True)
class Job:
    """One attempt to run one task: what an engine receives from the master.

    Made for every attempt (a map of 20,000 items in chunks of 64 makes 313), so a plain
    slotted record: a frozen one pays for each field on creation. Nothing changes one."""

    task_id: int
    task_name: str
    program: Program
    input_bytes: bytes
    data_zip: Path | None = None
    attempt: int = 1
    keep_files: bool = False
    # The master refuses larger outputs; engines stop reading one at this size.
    max_output_bytes: int | None = None
    # The contract codec of input and output ("pickle" only for the user's own workers).
    codec: str = CODEC_JSON


@dataclass(slots=True)
class Completion:
    """What an engine reports when a job ended.

    `output` is the raw output envelope (decoded by the master with the safe codec), or
    None when none was produced. `lost` marks a job whose worker died or vanished: the
    master may retry it; `started=False` says it never began (e.g. it was queued on a
    worker that died), so the retry costs no attempt. `detail` explains a missing output
    (exit status, stderr tail). `oversize` is the size of an output refused unread for
    being over `Job.max_output_bytes`. `setup_failed` reports a worker's initializer
    (`WorkerSetup`) that failed, with its output, rather than a task. `outcome` is set
    instead of `output` by an engine that ran the task in the master's own process (the
    grid simulator): the user's function and arguments, never a worker's bytes.
    """

    task_id: int
    output: bytes | bytearray | None
    exit_status: int | None = None
    lost: bool = False
    started: bool = True
    detail: str = ""
    oversize: int = 0
    setup_failed: bool = False
    outcome: Outcome | None = None


@dataclass(frozen=True, eq=False)
class WorkerSetup:
    """What each new worker process does besides tasks, as ProcessPoolExecutor's options.

    `initializer` runs once in every worker process before its first task, with the
    arguments encoded in `initializer_input` (an input envelope); if it fails, the master
    breaks (BrokenMasterError for every pending task). A worker process is replaced after
    `max_tasks` tasks (None: never).
    """

    initializer: Program | None = None
    initializer_input: bytes = b""
    max_tasks: int | None = None


@runtime_checkable
class Interface(Protocol):
    """The engine protocol. See the module docstring for who calls what."""

    @property
    def num_workers(self) -> int: ...

    def idle_workers(self) -> Sequence[Any]: ...

    def execute(self, job: Job, worker: Any) -> None: ...

    def wait(self, timeout: float | None) -> list[Completion]: ...

    def wakeup(self) -> None: ...

    def get_status(self) -> dict[str, Any]: ...

    def cleanup(self) -> None: ...


@runtime_checkable
class SupportsWorkerSetup(Protocol):
    """An engine whose workers outlive a task; `configure_workers` comes before any job
    and raises UserError for a setup its workers cannot follow."""

    def configure_workers(self, setup: WorkerSetup) -> None: ...
