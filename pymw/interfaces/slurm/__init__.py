"""The Slurm interface: PyMW tasks as elements of Slurm job arrays.

    python examples/monte_pi.py -i slurm -n 50 --slurm-partition short --slurm-time 10
    python examples/monte_pi.py -i slurm -c dist/pyboinc -a 1.00_python311.zip

How a task travels::

    execute() ─▶ buffered ─▶ wait(): tasks that came together (within SUBMIT_LINGER)
       ─▶ arrays/<n>/<index>/ (script link, input) + checkpoint ─▶ one
          `sbatch --array=0-<k-1>%<-n>` per array of up to MaxArraySize tasks
       ─▶ a node runs job.sh: the worker contract, then done/<n>.<index>
    wait() ◀─ one listing of done/ per poll: output ─▶ Completion
           ◀─ one `squeue --array --states=all` per STATE_INTERVAL for the elements that
              end without a marker (cancelled, time or memory limit, node failure) or
              wait in vain (a drained node): states.py says what each state means

The master and the compute nodes must share the work directory (`--slurm-dir`, default
./pymw-slurm), as they share home directories on most clusters; nothing is transferred.
Options map to sbatch's own (`--slurm-partition`, `--slurm-account`, `--slurm-time`,
`--slurm-cpus-per-task`, `--slurm-mem`, any other with `--slurm-arg`) and are checked
once with `sbatch --test-only` before anything is submitted. `-n` caps how many elements
of each array run at once (`%N`).

A master killed (SIGKILL, a lost login session) leaves its arrays running and its
checkpoint in the work directory; the same program started again in the same directory
reattaches to them and submits only what never was. A master that ends normally, or on
Ctrl-C or an error, cancels what is left and removes the work directory.

There is no `sacct` without slurmdbd, and this interface needs none: completion comes
from the tasks' own files, and from slurmctld's memory of finished jobs (MinJobAge,
300 s by default) for the ones that left no files.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UserError
from ...worker_app import find_worker_app
from ..base import Completion, Job
from ..task_keys import TaskKeys
from ..waiting import Poller
from .arrays import (
    BATCH_SCRIPT_NAME,
    FILES,
    LOG_NAME,
    WorkDir,
    array_spec,
    batch_script,
    log_tail,
    worker_argv,
)
from .checkpoint import ArrayRecord, Checkpoint, WorkDirLock
from .commands import ElementState, SlurmCommandError, SlurmCommands
from .options import SlurmOptions
from .states import Fate, describe, fate_of

__all__ = ["SlurmInterface", "SlurmOptions"]

logger = logging.getLogger("pymw.slurm")

#: Seconds between looks at done/ while tasks run, growing to POLL_INTERVAL_MAX.
POLL_INTERVAL, POLL_INTERVAL_MAX = 0.25, 5.0
#: Seconds between squeue calls: slurmctld serves everyone on the cluster.
STATE_INTERVAL = 10.0
#: Seconds an element may pend for a reason only an administrator can clear (a drained
#: node, a partition down, a hold) before its task fails with that reason.
STUCK_TIMEOUT = 900.0
#: Seconds a finished element's marker may take to appear (a shared filesystem's
#: attribute cache) before its task fails for the missing file.
MARKER_GRACE = 60.0
#: Seconds squeue may keep failing (slurmctld down) before the master gives up.
SLURM_SILENCE_LIMIT = 600.0
#: Tasks that came to the interface within this many seconds of each other share an array.
SUBMIT_LINGER = 0.2
#: Tasks queued or running on Slurm at once; past it, tasks wait in the master's queue.
MAX_QUEUED = 10_000
DEFAULT_WORK_DIR = "pymw-slurm"


@dataclass
class _Element:
    """A task's job waiting for its element (array number, index) to finish."""

    job: Job
    number: int
    index: int
    stuck_since: float | None = None
    ended_since: float | None = None


@dataclass
class _Counts:
    arrays_submitted: int = 0
    tasks_submitted: int = 0
    reattached: int = 0
    states: dict[str, int] = field(default_factory=dict)


class SlurmInterface:
    """Run tasks as elements of Slurm job arrays, at most `num_workers` running per array."""

    def __init__(
        self,
        num_workers: int = 16,
        *,
        options: SlurmOptions | None = None,
        python: str | None = None,
        custom_app_dir: str | os.PathLike | None = None,
        custom_args: Sequence[str] = (),
        work_dir: str | os.PathLike = DEFAULT_WORK_DIR,
        max_array_size: int | None = None,
        max_queued: int = MAX_QUEUED,
        poll_interval: float = POLL_INTERVAL,
        state_interval: float = STATE_INTERVAL,
        stuck_timeout: float = STUCK_TIMEOUT,
        marker_grace: float = MARKER_GRACE,
    ) -> None:
        if num_workers < 1:
            raise UserError(f"--num_workers must be at least 1, got {num_workers}")
        self._num_workers = num_workers
        self.options = options or SlurmOptions()
        self.slurm = SlurmCommands()
        self.app = find_worker_app(custom_app_dir, custom_args) if custom_app_dir else None
        worker = [str(self.app.executable)] if self.app else [python or sys.executable]
        self._command = worker_argv(worker, self.app.stdlib_zip if self.app else None)
        self.slurm.check_options(self.options.sbatch_args())
        cluster_limit = self.slurm.max_array_size()
        if cluster_limit < 1:
            raise UserError("this Slurm cluster disables job arrays (MaxArraySize=0)")
        self._max_array_size = min(max_array_size or cluster_limit, cluster_limit)
        self._max_queued = max_queued
        self._state_interval, self._stuck_timeout = state_interval, stuck_timeout
        self._marker_grace = marker_grace
        self.work = WorkDir(Path(work_dir).resolve())
        self.work.make()
        self._lock = WorkDirLock(self.work.root)
        self.checkpoint = Checkpoint.load_or_start(self.work.root)
        self._attachable = self.checkpoint.latest_elements()
        self._keys = TaskKeys()
        self._task_keys: dict[int, str] = {}
        self._buffer: list[Job] = []
        self._buffer_grew = False
        self._pending: dict[tuple[int, int], _Element] = {}
        self._counts = _Counts()
        self._last_state_read = 0.0
        self._silent_since: float | None = None
        self._states_owed = False
        self._keep = False
        self._cleanup_lock, self._cleaned = threading.Lock(), False
        self._poller = Poller(poll_interval, max(poll_interval, POLL_INTERVAL_MAX))
        self._resubmit_unrecorded()

    @classmethod
    def from_options(cls, options: Any) -> SlurmInterface:
        """`-n` elements running at once per array; `--slurm-*` options go to sbatch."""
        app_args = getattr(options, "app_args", "") or ""
        return cls(
            num_workers=int(getattr(options, "num_workers", None) or 16),
            options=SlurmOptions.from_options(options),
            python=getattr(options, "slurm_python", None),
            custom_app_dir=getattr(options, "app_path", None),
            custom_args=shlex.split(app_args),
            work_dir=getattr(options, "slurm_dir", None) or DEFAULT_WORK_DIR,
        )

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def idle_workers(self) -> list[str]:
        in_flight = len(self._pending) + len(self._buffer)
        room = self._max_queued - in_flight
        # Refill in whole arrays, not one small array per finished task.
        refill = max(1, min(self._max_array_size, self._max_queued // 4))
        return ["slurm"] * room if room >= refill or not in_flight else []

    def execute(self, job: Job, worker: Any) -> None:
        """Reattach to the element that ran this task before the master restarted, or
        buffer the job for the next array."""
        self._keep = self._keep or job.keep_files
        element = self._attachable.pop(self._key(job), None)
        if element is not None:
            self._pending[element] = _Element(job, *element)
            self._counts.reattached += 1
            return
        self._buffer.append(job)
        self._buffer_grew = True

    def wait(self, timeout: float | None) -> list[Completion]:
        if self._buffer:
            if self._buffer_grew and len(self._buffer) < self._max_array_size:
                self._buffer_grew = False
                if self._poller.sleep(SUBMIT_LINGER):
                    return []  # more tasks are coming: they go in the same array
            self._submit_buffer()
        return self._poller.wait(self._collect, timeout)

    def wakeup(self) -> None:
        self._poller.wakeup()

    def get_status(self) -> dict[str, Any]:
        return {
            "name": "slurm",
            "work_dir": str(self.work.root),
            "arrays": {n: r.job_id for n, r in sorted(self.checkpoint.arrays.items())},
            "arrays_submitted": self._counts.arrays_submitted,
            "tasks_submitted": self._counts.tasks_submitted,
            "tasks_reattached": self._counts.reattached,
            "tasks_waiting_for_slurm": len(self._pending),
            "slurm_states": dict(self._counts.states),
            "worker_app": str(self.app.executable) if self.app else None,
        }

    def cleanup(self) -> None:
        """Cancel the arrays this work directory still has running, remove its files.

        Not reached when the master is killed: then the arrays run on and the checkpoint
        stays for a rerun to reattach.
        """
        with self._cleanup_lock:
            if self._cleaned:
                return  # the master may stop its engine from two threads
            self._cleaned = True
        # What this run still waits for, and what an earlier run left that none claimed.
        done = set(_marker_names(self.work.done_dir))
        left = {element for element in self._attachable.values() if element not in done}
        arrays = {number for number, _ in [*self._pending, *left]}
        cancelled = self.slurm.cancel(self.checkpoint.arrays[n].job_id or "" for n in arrays)
        self._pending.clear()
        self._buffer.clear()
        if not cancelled:
            logger.warning("arrays left running: %s kept for a rerun to reattach", self.work.root)
        elif self._keep:
            self.checkpoint.path.unlink(missing_ok=True)
            logger.warning("task files kept in %s", self.work.root)
        else:
            self.work.remove()
        self._lock.release()

    # --------------------------------------------------------------- submitting

    def _key(self, job: Job) -> str:
        """The task's content key, the same for every attempt and every rerun."""
        if job.task_id not in self._task_keys:
            self._task_keys[job.task_id] = self._keys.key_for(job)
        return self._task_keys[job.task_id]

    def _submit_buffer(self) -> None:
        jobs, self._buffer = self._buffer, []
        for start in range(0, len(jobs), self._max_array_size):
            self._submit_array(jobs[start : start + self._max_array_size])

    def _submit_array(self, jobs: list[Job]) -> None:
        number = self.work.next_array_number(list(self.checkpoint.arrays))
        for index, job in enumerate(jobs):
            self.work.write_element(number, index, job)
        script = self.work.array_dir(number) / BATCH_SCRIPT_NAME
        script.write_text(batch_script(self.work, number, self._command), encoding="utf-8")
        record = ArrayRecord([self._key(job) for job in jobs])
        self.checkpoint.arrays[number] = record
        self.checkpoint.save()  # a master killed during sbatch finds the array by name
        self._sbatch(number, range(len(jobs)))
        for index, job in enumerate(jobs):
            self._pending[(number, index)] = _Element(job, number, index)

    def _sbatch(self, number: int, indices: Sequence[int]) -> None:
        record = self.checkpoint.arrays[number]
        record.job_id = self.slurm.submit(
            [
                *self.options.sbatch_args(),
                f"--array={array_spec(indices, self._num_workers)}",
                f"--job-name={self.checkpoint.job_name(number)}",
                f"--output={self.work.array_dir(number)}/%a/{LOG_NAME}",
            ],
            self.work.array_dir(number) / BATCH_SCRIPT_NAME,
        )
        self.checkpoint.save()
        self._counts.arrays_submitted += 1
        self._counts.tasks_submitted += len(indices)
        logger.info("submitted %d tasks as Slurm array job %s", len(indices), record.job_id)

    def _resubmit_unrecorded(self) -> None:
        """Arrays the checkpoint holds without a job id: the master died during sbatch.
        Slurm may have taken them (find them by name) or not (submit their elements that
        have no marker)."""
        unrecorded = [n for n, record in self.checkpoint.arrays.items() if record.job_id is None]
        if not unrecorded:
            return
        found = self.slurm.find_by_name(self.checkpoint.job_name(n) for n in unrecorded)
        for number in unrecorded:
            record = self.checkpoint.arrays[number]
            record.job_id = found.get(self.checkpoint.job_name(number))
            if record.job_id is not None:
                self.checkpoint.save()
                continue
            missing = [
                index
                for index in range(len(record.keys))
                if not self.work.marker(number, index).exists()
            ]
            if missing:
                self._sbatch(number, missing)

    # --------------------------------------------------------------- collecting

    def _collect(self) -> list[Completion]:
        if not self._pending:
            return []
        finished: dict[tuple[int, int], Completion] = {}
        for key in _marker_names(self.work.done_dir):
            if key in self._pending:
                finished[key] = self._from_files(self._pending[key])
        # Finished tasks go back first; Slurm is asked on the next look (a slow squeue,
        # slurmctld restarting, must not hold results back), and no later than that.
        states = None if finished and not self._states_owed else self._read_states()
        self._states_owed = bool(finished) and self._state_read_due()
        if states is not None:
            now, stuck = time.monotonic(), []
            for key, element in self._pending.items():
                if key not in finished:
                    state = states.get((self._job_id(element), element.index))
                    completion = self._judge(element, state, now, stuck)
                    if completion is not None:
                        finished[key] = completion
            self.slurm.cancel(stuck)
        for key in finished:
            del self._pending[key]
        return list(finished.values())

    def _state_read_due(self) -> bool:
        return time.monotonic() - self._last_state_read >= self._state_interval

    def _read_states(self) -> dict[tuple[str, int], ElementState] | None:
        """slurmctld's view of our unfinished elements, at most once per state interval."""
        if not self._state_read_due():
            return None
        now = self._last_state_read = time.monotonic()
        try:
            elements = self.slurm.states({self._job_id(e) for e in self._pending.values()})
        except SlurmCommandError as error:
            # A busy or restarting slurmctld: running tasks still finish through their
            # files; only a long silence ends the batch.
            self._silent_since = self._silent_since or now
            if now - self._silent_since >= SLURM_SILENCE_LIMIT:
                raise UserError(
                    f"Slurm has not answered squeue for {now - self._silent_since:.0f} s "
                    f"({error}); once `scontrol ping` answers, run the program again in "
                    "the same directory: it reattaches to its arrays"
                ) from None
            logger.warning("squeue failed (%s); asking again in %g s", error, self._state_interval)
            return None
        self._silent_since = None
        counts: dict[str, int] = {}
        for element in elements:
            counts[element.state] = counts.get(element.state, 0) + 1
        self._counts.states = counts
        return {(element.array_job, element.index): element for element in elements}

    def _judge(
        self, element: _Element, state: ElementState | None, now: float, stuck: list[str]
    ) -> Completion | None:
        """What Slurm's state means for an element that left no marker (states.py)."""
        if self.work.marker(element.number, element.index).exists():
            return self._from_files(element)  # it ended after the listing, or NFS lists late
        fate = fate_of(state) if state is not None else None
        if fate is not Fate.STUCK:
            element.stuck_since = None
        if fate not in (Fate.ENDED, None):
            element.ended_since = None
        if state is not None and fate in (Fate.KILLED, Fate.LOST):
            return self._failed(element, describe(state), lost=fate is Fate.LOST)
        if state is not None and fate is Fate.STUCK:
            if element.stuck_since is None:
                element.stuck_since = now
                logger.warning("Slurm cannot start %s: %s", self._name(element), state.reason)
            waited = now - element.stuck_since
            if waited < self._stuck_timeout:
                return None
            stuck.append(self._name(element))
            return self._failed(
                element,
                f"Slurm could not start job {self._name(element)} in {waited:.0f} s: "
                f"{state.reason}; the element was cancelled",
            )
        if fate in (Fate.ENDED, None):
            return self._late_marker(element, state, now)
        return None

    def _late_marker(
        self, element: _Element, state: ElementState | None, now: float
    ) -> Completion | None:
        """An element Slurm says ended (or forgot) whose marker is not there (yet)."""
        element.ended_since = element.ended_since or now
        if now - element.ended_since < self._marker_grace:
            return None
        said = describe(state) if state else f"Slurm no longer knows job {self._name(element)}"
        return self._failed(
            element,
            f"{said}, and it left no exit status in {self.work.done_dir} within "
            f"{self._marker_grace:.0f} s",
            lost=state is None,
        )

    def _from_files(self, element: _Element) -> Completion:
        number, index = element.number, element.index
        try:
            status: int | None = int(self.work.marker(number, index).read_text().strip())
        except (OSError, ValueError):
            status = None
        output_path = self.work.element_dir(number, index) / FILES.output
        size = output_path.stat().st_size if output_path.exists() else None
        limit = element.job.max_output_bytes
        if size is not None and limit is not None and size > limit:
            return Completion(element.job.task_id, None, exit_status=status, oversize=size)
        if size is not None:
            return Completion(element.job.task_id, output_path.read_bytes(), exit_status=status)
        detail = (
            f"Slurm job {self._name(element)}: {_describe_status(status)}; "
            f"{log_tail(self.work, number, index)}"
        )
        return Completion(element.job.task_id, None, exit_status=status, detail=detail)

    def _failed(self, element: _Element, why: str, *, lost: bool = False) -> Completion:
        detail = f"{why}; {log_tail(self.work, element.number, element.index)}"
        return Completion(element.job.task_id, None, lost=lost, detail=detail)

    def _job_id(self, element: _Element) -> str:
        return self.checkpoint.arrays[element.number].job_id or ""

    def _name(self, element: _Element) -> str:
        """`<array job id>_<index>`, as squeue and scancel name an element."""
        return f"{self._job_id(element)}_{element.index}"


def _marker_names(done_dir: Path) -> list[tuple[int, int]]:
    """(array, index) of every marker in done/ (one listing; `.part` files skipped)."""
    names = []
    try:
        entries = os.listdir(done_dir)
    except FileNotFoundError:
        return []
    for name in entries:
        number, _, index = name.partition(".")
        if number.isdigit() and index.isdigit():
            names.append((int(number), int(index)))
    return names


def _describe_status(status: int | None) -> str:
    if status is None:
        return "no exit status"
    if status > 128:
        return f"the worker was killed by signal {status - 128}"
    return f"the worker exited with status {status} and wrote no output"
