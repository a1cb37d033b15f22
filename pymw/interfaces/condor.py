"""The HTCondor interface: PyMW tasks as vanilla-universe jobs on an HTCondor pool.

    python examples/monte_pi.py -i condor -n 50                       # Python on the pool
    python examples/monte_pi.py -i condor -c dist/pyboinc -a 1.00_python311.zip

How a job travels::

    execute() ─▶ task folder (script, input[, data zip]) ─▶ one Submit per batch ─▶ schedd
    wait()    ◀─ JobEventLog: terminated / held / evicted / aborted ◀─ pool machine
                 └─ output file transferred back ─▶ Completion

Every job follows the worker contract (`<python> <script> <input> <output>`, or the frozen
worker app `<exe> <script> <stdlib zip> <input> <output>`, so pool machines need no Python).
Files move with HTCondor's file transfer (`should_transfer_files = YES`): no shared
filesystem is assumed. Jobs are submitted in batches to the local schedd and followed
through one job event log; held, evicted, aborted and failed jobs become task errors
carrying HTCondor's reason. Uses the `htcondor2` bindings (`pip install htcondor`).

Tested against the `Submit` objects it builds and against event logs in HTCondor's
format; it has not been run against a live pool in this project's CI (see docs/clusters.md).
"""

from __future__ import annotations

import itertools
import logging
import os
import platform
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyboinc import contract

from ..errors import UserError
from ..worker_app import WorkerApp, find_worker_app
from . import import_for
from .base import Completion, Job
from .waiting import Poller

htcondor2 = import_for("condor", "htcondor2")

logger = logging.getLogger("pymw.condor")

# Seconds between reads of the job event log while jobs run.
POLL_INTERVAL = 1.0
# A job's folder holds the worker contract's files, under the contract's names.
FILES = contract.LOCAL_FILES
STDERR_TAIL_CHARS = 4000
# HTCondor's OpSys for the frozen worker, by the manifest's "os": the OS names of the
# build's platforms/<os>/ folders (the same as `worker_app.host_os()`).
_APP_OPSYS = {"linux": "LINUX", "windows": "WINDOWS", "apple": "OSX"}
_APP_ARCH = {"x86_64": "X86_64", "amd64": "X86_64", "aarch64": "aarch64", "arm64": "aarch64"}


@dataclass(eq=False)
class CondorSlot:
    """A place for one more job in the pool: the interface keeps `num_workers` in flight."""

    index: int

    def __repr__(self) -> str:
        return f"<CondorSlot {self.index}>"


@dataclass
class _Submitted:
    job: Job
    slot: CondorSlot
    task_dir: Path


def submit_description(
    app: WorkerApp | None, python: str, log_path: Path, requirements: str | None = None
) -> htcondor2.Submit:
    """The vanilla-universe description shared by a batch; each job's folder is an item."""
    files = ["$(task_dir)/" + FILES.script, "$(task_dir)/" + FILES.input]
    if app is None:
        worker = {"executable": python, "transfer_executable": "false"}
        arguments = FILES.command([])
        default_requirements = "TARGET.HasFileTransfer"
    else:
        worker = {"executable": str(app.executable), "transfer_executable": "true"}
        files.append(str(app.stdlib_zip))
        arguments = FILES.command([], app.stdlib_zip.name)
        default_requirements = _app_requirements(app)
    return htcondor2.Submit(
        {
            "universe": "vanilla",
            **worker,
            "arguments": " ".join(shlex.quote(arg) for arg in arguments),
            "initialdir": "$(task_dir)",
            "should_transfer_files": "YES",
            "when_to_transfer_output": "ON_EXIT",
            "transfer_input_files": ",".join(files) + "$(data_zip)",
            "transfer_output_files": FILES.output,
            "output": "stdout.txt",
            "error": contract.STDERR_FILE,
            "log": str(log_path),
            "requirements": requirements or default_requirements,
            "+PyMWTask": '"$(task_name)"',
        }
    )


def _app_requirements(app: WorkerApp) -> str:
    os_name = app.manifest.get("os", "")
    if os_name not in _APP_OPSYS:
        raise UserError(
            f"the worker manifest names OS {os_name!r}, which HTCondor pools do not run "
            f"({', '.join(_APP_OPSYS)}); rebuild it with `nox -s build-workers`"
        )
    opsys = _APP_OPSYS[os_name]
    arch = _APP_ARCH.get(platform.machine().lower(), platform.machine())
    return f'(TARGET.OpSys == "{opsys}") && (TARGET.Arch == "{arch}") && TARGET.HasFileTransfer'


def completion_for(event: Any, job: Job, task_dir: Path) -> Completion | None:
    """What a job event means for its task: a Completion, or None while it runs."""
    kind = event.type
    if kind == htcondor2.JobEventType.JOB_TERMINATED:
        if event.get("TerminatedNormally", False):
            status = int(event.get("ReturnValue", 0))
            how = f"exit status {status}"
        else:
            status = -int(event.get("TerminatedBySignal", 0))
            how = f"killed by signal {-status}"
        output_path = task_dir / FILES.output
        size = output_path.stat().st_size if output_path.exists() else None
        if size is not None and job.max_output_bytes is not None and size > job.max_output_bytes:
            return Completion(job.task_id, None, exit_status=status, oversize=size)  # unread
        output = output_path.read_bytes() if size is not None else None
        detail = "" if output is not None else f"{how}; {_stderr_tail(task_dir)}"
        return Completion(job.task_id, output, exit_status=status, detail=detail)
    if kind == htcondor2.JobEventType.JOB_HELD:
        code = f"code {event.get('HoldReasonCode')}/{event.get('HoldReasonSubCode')}"
        return Completion(
            job.task_id,
            None,
            detail=f"HTCondor held the job: {event.get('HoldReason', 'no reason given')} ({code})",
        )
    if kind == htcondor2.JobEventType.JOB_EVICTED:
        return Completion(
            job.task_id, None, lost=True, detail="HTCondor evicted the job from its machine"
        )
    if kind == htcondor2.JobEventType.JOB_ABORTED:
        reason = event.get("Reason", "no reason given")
        return Completion(job.task_id, None, detail=f"HTCondor removed the job: {reason}")
    if kind in (htcondor2.JobEventType.EXECUTABLE_ERROR, htcondor2.JobEventType.SHADOW_EXCEPTION):
        # A shadow exception is the submit side failing, not the task: worth a retry.
        message = event.get("Message", kind.name.lower().replace("_", " "))
        lost = kind == htcondor2.JobEventType.SHADOW_EXCEPTION
        return Completion(job.task_id, None, lost=lost, detail=f"HTCondor: {message}")
    return None


def _stderr_tail(task_dir: Path) -> str:
    try:
        text = (task_dir / contract.STDERR_FILE).read_text(errors="replace")
        tail = text[-STDERR_TAIL_CHARS:].strip()
    except OSError:
        tail = ""
    return f"stderr: {tail}" if tail else "no output file and no stderr"


class CondorInterface:
    """Run tasks as HTCondor jobs, at most `num_workers` of them queued or running at once."""

    def __init__(
        self,
        num_workers: int = 16,
        *,
        python: str = "python3",
        custom_app_dir: str | os.PathLike | None = None,
        custom_args: tuple[str, ...] | list[str] = (),
        requirements: str | None = None,
        schedd: Any = None,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        if num_workers < 1:
            raise UserError(f"--num_workers must be at least 1, got {num_workers}")
        self.app = find_worker_app(custom_app_dir, custom_args) if custom_app_dir else None
        self.schedd = schedd if schedd is not None else _local_schedd()
        self._slots = [CondorSlot(index) for index in range(num_workers)]
        self._free = list(self._slots)
        self._root = Path(tempfile.mkdtemp(prefix="pymw-condor-"))
        self.log_path = self._root / "jobs.log"
        self.log_path.touch()
        self.description = submit_description(self.app, python, self.log_path, requirements)
        self._log = htcondor2.JobEventLog(str(self.log_path))
        self._batch: list[_Submitted] = []
        self._jobs: dict[tuple[int, int], _Submitted] = {}
        self._scripts: dict[str, Path] = {}
        self._poller = Poller(poll_interval, poll_interval)
        self._batches = itertools.count()
        self._keep = False

    @classmethod
    def from_options(cls, options: Any) -> CondorInterface:
        """`-n` jobs in flight; `-c DIR -a ZIP` runs them with the frozen worker app."""
        app_args = getattr(options, "app_args", "") or ""
        return cls(
            num_workers=getattr(options, "num_workers", None) or 16,
            custom_app_dir=getattr(options, "app_path", None),
            custom_args=shlex.split(app_args),
        )

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self._slots)

    def idle_workers(self) -> list[CondorSlot]:
        return list(self._free)

    def execute(self, job: Job, worker: CondorSlot) -> None:
        """Write the job's files; it is submitted with its batch in `wait`."""
        self._free.remove(worker)
        task_dir = self._root / "tasks" / f"{job.task_name}-{job.attempt}"
        task_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._script(job), task_dir / FILES.script)
        contract.write_atomically(str(task_dir / FILES.input), job.input_bytes)
        self._keep = self._keep or job.keep_files
        self._batch.append(_Submitted(job, worker, task_dir))

    def wait(self, timeout: float | None) -> list[Completion]:
        self._submit_batch()
        return self._poller.wait(self._read_events, timeout)

    def wakeup(self) -> None:
        self._poller.wakeup()

    def get_status(self) -> dict[str, Any]:
        return {
            "name": "condor",
            "jobs_in_flight": len(self._jobs),
            "log": str(self.log_path),
            "worker_app": str(self.app.executable) if self.app else None,
        }

    def cleanup(self) -> None:
        if self._jobs:
            constraint = " || ".join(f"(ClusterId == {c} && ProcId == {p})" for c, p in self._jobs)
            try:
                self.schedd.act(htcondor2.JobAction.Remove, constraint)
            except Exception as error:  # the schedd may be gone; the files still go
                logger.warning("could not remove HTCondor jobs: %s", error)
            self._jobs.clear()
        if self._keep:
            logger.warning("task files kept in %s", self._root)
        else:
            shutil.rmtree(self._root, ignore_errors=True)

    # --------------------------------------------------------------- internals

    def _script(self, job: Job) -> Path:
        program = job.program
        if program.digest not in self._scripts:
            path = self._root / "scripts" / f"{program.name}-{program.digest}.py"
            path.parent.mkdir(exist_ok=True)
            path.write_text(program.script, encoding="utf-8")
            self._scripts[program.digest] = path
        return self._scripts[program.digest]

    def itemdata(self, batch: list[_Submitted]) -> list[dict[str, str]]:
        """One item per job: its folder, its name and its data archive, if any."""
        return [
            {
                "task_dir": str(item.task_dir),
                "task_name": item.job.task_name,
                "data_zip": f",{item.job.data_zip}" if item.job.data_zip else "",
            }
            for item in batch
        ]

    def _submit_batch(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        result = self.schedd.submit(self.description, itemdata=iter(self.itemdata(batch)))
        cluster = result.cluster()
        for proc, item in enumerate(batch):
            self._jobs[(cluster, proc)] = item
        logger.info("submitted %d jobs as HTCondor cluster %d", len(batch), cluster)

    def _read_events(self) -> list[Completion]:
        completions = []
        for event in self._log.events(stop_after=0):
            item = self._jobs.get((event.cluster, event.proc))
            if item is None:
                continue
            completion = completion_for(event, item.job, item.task_dir)
            if completion is None:
                continue
            if event.type != htcondor2.JobEventType.JOB_TERMINATED:
                self._remove(event.cluster, event.proc)  # held/evicted: do not run it again
            del self._jobs[(event.cluster, event.proc)]
            self._free.append(item.slot)
            if not self._keep:
                shutil.rmtree(item.task_dir, ignore_errors=True)
            completions.append(completion)
        return completions

    def _remove(self, cluster: int, proc: int) -> None:
        try:
            self.schedd.act(
                htcondor2.JobAction.Remove, f"ClusterId == {cluster} && ProcId == {proc}"
            )
        except Exception as error:
            logger.warning("could not remove HTCondor job %d.%d: %s", cluster, proc, error)


def _local_schedd() -> Any:
    """The schedd of this submit machine, or a one-line error saying none answers."""
    try:
        schedd = htcondor2.Schedd()
        schedd.query(constraint="false", projection=["ClusterId"])
    except Exception as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"no HTCondor schedd answers on this machine ({reason}); run on a submit node "
            "of a pool, or use -i generic / -i mpi"
        ) from None
    return schedd
