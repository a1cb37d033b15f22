"""PyMW batches submitted to a BOINC project over HTTP: remote job submission.

    python examples/monte_pi.py -i boinc --url https://project.example/ --auth-file ~/.boinc_auth \\
        -a 1.00_python311.zip

For scientists with no shell on the BOINC server. The project's admin installs the
`pymw` app once (the BOINC interface's setup, `-i boinc -p <project>`); from then on any
machine submits with the account's authenticator. How a task travels::

    submit_task ─▶ execute(): job buffered ─▶ wait(): script uploaded once (job_file.php),
    input sent inline ─▶ submit_batch into this master's batch ─▶ volunteers run it
    ─▶ query_batch (polled with backoff) says done ─▶ get_output3.php, size-limited
    ─▶ master decodes it with the safe codec ─▶ future / get_result

One batch per master. A resume file in the task directory names the batch and the jobs
already submitted, and job names come from task content, so an interrupted master run
again reattaches to its batch instead of submitting again. The batch is retired once
every result is collected.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..base import Completion, Job
from .constants import (
    APP_NAME,
    DEFAULT_MAX_NBYTES,
    INPUT_OPEN_NAME,
    OUTPUT_OPEN_NAME,
    SCRIPT_OPEN_NAME,
)
from .project import write_if_changed
from .rpc import (
    BatchSpec,
    BatchState,
    BoincRpcClient,
    BoincRpcError,
    InputFile,
    JobSpec,
    OutputTooLargeError,
    RemoteError,
)
from .workunits import TaskKeys

logger = logging.getLogger("pymw.boinc")

AUTH_ENVIRONMENT_VARIABLE = "PYMW_BOINC_AUTHENTICATOR"
RESUME_FILE = "remote_batch.json"
# query_batch is polled from every POLL_MIN seconds up to every POLL_MAX while nothing
# changes: a server answers many scientists, and BOINC results take tens of seconds.
POLL_MIN = 1.0
POLL_MAX = 30.0
MAX_OUTSTANDING_JOBS = 100_000


def read_authenticator(value: str | None, path: str | None) -> str:
    """The account authenticator: --auth, a 0600 --auth-file, or PYMW_BOINC_AUTHENTICATOR.

    A file readable by others would leak the account, so it is refused.
    """
    if value:
        return value.strip()
    if path:
        auth_file = Path(path).expanduser()
        try:
            mode = auth_file.stat().st_mode
            text = auth_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise UserError(f"cannot read --auth-file {path}: {error.strerror}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(f"--auth-file {path} is readable by others; run chmod 600 {path}")
        if not text:
            raise UserError(f"--auth-file {path} is empty; put the account's authenticator in it")
        return text
    from_environment = os.environ.get(AUTH_ENVIRONMENT_VARIABLE, "").strip()
    if from_environment:
        return from_environment
    raise UserError(
        f"--url needs the account's authenticator: --auth-file PATH (mode 600), "
        f"{AUTH_ENVIRONMENT_VARIABLE}, or --auth KEY"
    )


@dataclass
class ResumeRecord:
    """The batch this master submits into, and the jobs already in it."""

    path: Path
    url: str
    batch_id: int
    submitted: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, path: Path, url: str) -> ResumeRecord | None:
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = cls(path, data["url"], int(data["batch_id"]), set(data["submitted"]))
        except (ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path} is damaged ({error}); remove it to submit a new batch") from None
        return record if record.url == url else None

    def save(self) -> None:
        data = {"url": self.url, "batch_id": self.batch_id, "submitted": sorted(self.submitted)}
        write_if_changed(self.path, json.dumps(data, indent=1))


def _user_error(error: BoincRpcError) -> UserError:
    if isinstance(error, RemoteError):
        return UserError(f"the BOINC project refused the request: {error.message}")
    return UserError(str(error))


class BOINCRemoteInterface:
    """Run PyMW tasks as jobs of one batch on a BOINC project, over its web RPCs."""

    def __init__(
        self,
        url: str,
        authenticator: str,
        stdlib_zip: str | None = None,
        task_path: str | os.PathLike = "tasks",
        *,
        num_workers: int = 1,
        max_nbytes: int = DEFAULT_MAX_NBYTES,
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.stdlib_zip = stdlib_zip
        self.max_nbytes = max_nbytes
        self._num_workers = num_workers
        self.task_dir = Path(task_path).resolve()
        self.task_dir.mkdir(parents=True, exist_ok=True)
        self.client = BoincRpcClient(self.url, authenticator)
        try:
            self.record = ResumeRecord.load(self.task_dir / RESUME_FILE, self.url) or (
                self._new_batch()
            )
            self.client.query_batch(self.record.batch_id, job_details=False)
        except BoincRpcError as error:
            raise _user_error(error) from None
        self._keys = TaskKeys(f"pymw_{self.record.batch_id}")
        self._uploaded_scripts: dict[str, str] = {}
        self._buffer: list[tuple[str, JobSpec]] = []
        self._pending: dict[str, int] = {}
        self._wake = threading.Event()
        self._poll_interval = POLL_MIN

    @classmethod
    def from_options(cls, options: Any) -> BOINCRemoteInterface:
        if getattr(options, "project_home", None):
            raise UserError("give either -p (a project on this machine) or --url, not both")
        if getattr(options, "app_path", None):
            raise UserError("--url uses the workers the project's admin installed: drop -c")
        authenticator = read_authenticator(getattr(options, "auth", None),
                                           getattr(options, "auth_file", None))  # fmt: skip
        app_args = (getattr(options, "app_args", "") or "").split()
        return cls(options.url, authenticator, app_args[0] if app_args else None,
                   num_workers=getattr(options, "num_workers", 1) or 1)  # fmt: skip

    def _new_batch(self) -> ResumeRecord:
        batch_id = self.client.create_batch(APP_NAME, f"pymw_{int(time.time())}")
        record = ResumeRecord(self.task_dir / RESUME_FILE, self.url, batch_id)
        record.save()
        logger.info("created batch %d on %s", batch_id, self.url)
        return record

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def idle_workers(self) -> list[str]:
        room = MAX_OUTSTANDING_JOBS - len(self._pending) - len(self._buffer)
        return ["boinc-remote"] * max(0, room)

    def execute(self, job: Job, worker: Any) -> None:
        if job.data_zip is not None:
            raise UserError("data_files are not supported with --url yet; use -p on the server")
        name = self._keys.name_for(job)
        self._pending[name] = job.task_id
        if name in self.record.submitted:
            return  # submitted by an earlier run of this master: only the result is awaited
        command = [SCRIPT_OPEN_NAME, *([self.stdlib_zip] if self.stdlib_zip else []),
                   INPUT_OPEN_NAME, OUTPUT_OPEN_NAME]  # fmt: skip
        files = [self._script_file(job), self._input_file(name, job.input_bytes)]
        self._buffer.append((name, JobSpec(name, " ".join(command), files)))

    def wait(self, timeout: float | None) -> list[Completion]:
        self._submit_buffered()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            completions = self._collect()
            if completions:
                self._poll_interval = POLL_MIN
                return completions
            interval = self._poll_interval
            if deadline is not None:
                interval = min(interval, max(0.0, deadline - time.monotonic()))
            if self._wake.wait(interval) or (deadline is not None and time.monotonic() >= deadline):
                self._wake.clear()
                return []
            self._poll_interval = min(self._poll_interval * 1.5, POLL_MAX)

    def wakeup(self) -> None:
        self._wake.set()

    def get_status(self) -> dict[str, Any]:
        return {"name": "boinc-remote", "url": self.url, "batch": self.record.batch_id,
                "jobs": {"not_submitted": len(self._buffer), "pending": len(self._pending)}}  # fmt: skip

    def cleanup(self) -> None:
        """Retire the batch once every result was collected; else keep it for a rerun."""
        try:
            if self._pending or self._buffer:
                logger.info("batch %d keeps %d unfinished jobs for a rerun",
                            self.record.batch_id, len(self._pending) + len(self._buffer))  # fmt: skip
                return
            self.client.retire_batch(self.record.batch_id)
            self.record.path.unlink(missing_ok=True)
        except BoincRpcError as error:
            logger.warning("could not retire batch %d: %s", self.record.batch_id, error)
        finally:
            self.client.close()

    # --------------------------------------------------------------- internals

    def _script_file(self, job: Job) -> InputFile:
        """Scripts are shared by many jobs: uploaded once, then named by their md5."""
        digest = job.program.digest
        if digest not in self._uploaded_scripts:
            path = self.task_dir / f"pymw_script_{digest}.py"
            write_if_changed(path, job.program.script)
            self._uploaded_scripts[digest] = self.client.upload_files([path])[0]
        return InputFile.staged(self._uploaded_scripts[digest])

    def _input_file(self, name: str, data: bytes) -> InputFile:
        try:
            return InputFile.inline(data.decode("utf-8"))
        except ValueError:
            path = self.task_dir / f"{name}_in"
            path.write_bytes(data)
            return InputFile.staged(self.client.upload_files([path])[0])

    def _submit_buffered(self) -> None:
        if not self._buffer:
            return
        jobs = [spec for _, spec in self._buffer]
        try:
            self.client.submit_batch(BatchSpec(APP_NAME, jobs, batch_id=self.record.batch_id))
        except BoincRpcError as error:
            raise _user_error(error) from None
        self.record.submitted.update(name for name, _ in self._buffer)
        self.record.save()
        logger.info("submitted %d jobs to batch %d", len(jobs), self.record.batch_id)
        self._buffer.clear()

    def _collect(self) -> list[Completion]:
        if not self._pending:
            return []
        status = self.client.query_batch(self.record.batch_id)
        completions = []
        for job in status.jobs:
            task_id = self._pending.get(job.name)
            if task_id is None or job.status not in ("done", "error"):
                continue
            del self._pending[job.name]
            completions.append(self._completion(task_id, job))
        if status.state == BatchState.ABORTED and self._pending:
            completions += [Completion(task_id, None, detail="the batch was aborted on the server")
                            for task_id in self._pending.values()]  # fmt: skip
            self._pending.clear()
        return completions

    def _completion(self, task_id: int, job) -> Completion:
        if job.status == "error" or not job.canonical_instance_id:
            reasons = "; ".join(job.errors) or f"exit status {job.exit_status}"
            return Completion(task_id, None, detail=f"BOINC job {job.name} failed: {reasons}")
        try:
            output = self.client.get_output(job.canonical_instance_id, 0,
                                            max_bytes=self.max_nbytes)  # fmt: skip
        except OutputTooLargeError:
            return Completion(task_id, None, detail=f"job {job.name}: output over max_nbytes "
                                                   f"{self.max_nbytes}")  # fmt: skip
        return Completion(task_id, output)
