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

Tasks submitted together go as one batch: BOINC takes jobs only into a batch that is
still being made, so a master that submits in waves (MapReduce) makes a batch per wave.
A resume file in the task directory names each submitted job's batch, and job names come
from task content, so an interrupted master run again reattaches to its batches instead
of submitting again. Batches are retired once every result is collected.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import UserError
from ..base import Completion, Job
from ..waiting import Poller
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
    OutputUnavailableError,
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
# Jobs are submitted once no task has been added for this long: one batch per wave.
SUBMIT_QUIET_SECONDS = 0.3
MAX_OUTSTANDING_JOBS = 100_000
# A job reported done whose output is not served yet (not assimilated) is asked for again
# at the next polls, up to this many times.
MAX_OUTPUT_TRIES = 30


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
    """Which batch holds each submitted task (by its content key): job names are
    `pymw_<batch>_<key>`, the form BOINC's results/<batch>/ layout and the assimilator use."""

    path: Path
    url: str
    submitted: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path, url: str) -> ResumeRecord:
        if not path.exists():
            return cls(path, url)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            record = cls(path, data["url"], {k: int(v) for k, v in data["submitted"].items()})
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(f"{path} is damaged ({error}); remove it to submit anew") from None
        if record.url != url:
            raise UserError(f"{path} belongs to {record.url}; use another task directory")
        return record

    @property
    def batches(self) -> set[int]:
        return set(self.submitted.values())

    def save(self) -> None:
        data = {"url": self.url, "submitted": self.submitted}
        write_if_changed(self.path, json.dumps(data, indent=1, sort_keys=True))


def _job_name(batch_id: int, key: str) -> str:
    return f"pymw_{batch_id}_{key}"


def _batch_name() -> str:
    return f"pymw_{time.time_ns()}"


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
        self.record = ResumeRecord.load(self.task_dir / RESUME_FILE, self.url)
        self._open_batch: int | None = None
        try:
            # Fails early, on one line, for a wrong URL, authenticator or missing app.
            for batch_id in self.record.batches:
                self.client.query_batch(batch_id, job_details=False)
            if not self.record.submitted:
                self._open_batch = self.client.create_batch(APP_NAME, _batch_name())
        except BoincRpcError as error:
            raise _user_error(error) from None
        self._keys = TaskKeys()
        self._uploaded_scripts: dict[str, str] = {}
        self._buffer: list[tuple[str, int, str, list[InputFile]]] = []
        self._pending: dict[int, dict[str, int]] = {}  # batch -> job name -> task id
        self._poller = Poller(POLL_MIN, POLL_MAX)
        self._last_buffered = 0.0
        self._output_tries: dict[str, int] = {}

    @classmethod
    def from_options(cls, options: Any) -> BOINCRemoteInterface:
        if getattr(options, "project_home", None):
            raise UserError("give either -p (a project on this machine) or --url, not both")
        if getattr(options, "app_path", None):
            raise UserError("--url uses the workers the project's admin installed: drop -c")
        authenticator = read_authenticator(
            getattr(options, "auth", None), getattr(options, "auth_file", None)
        )
        app_args = (getattr(options, "app_args", "") or "").split()
        return cls(
            options.url,
            authenticator,
            app_args[0] if app_args else None,
            num_workers=getattr(options, "num_workers", 1) or 1,
        )

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def idle_workers(self) -> list[str]:
        room = MAX_OUTSTANDING_JOBS - self._pending_count - len(self._buffer)
        return ["boinc-remote"] * max(0, room)

    def execute(self, job: Job, worker: Any) -> None:
        if job.data_zip is not None:
            raise UserError("data_files are not supported with --url yet; use -p on the server")
        key = self._keys.key_for(job)
        if key in self.record.submitted:  # by an earlier run of this master: await the result
            self._await(self.record.submitted[key], key, job.task_id)
            return
        command = [
            SCRIPT_OPEN_NAME,
            *([self.stdlib_zip] if self.stdlib_zip else []),
            INPUT_OPEN_NAME,
            OUTPUT_OPEN_NAME,
        ]
        files = [self._script_file(job), self._input_file(key, job.input_bytes)]
        self._buffer.append((key, job.task_id, " ".join(command), files))
        self._last_buffered = time.monotonic()

    def wait(self, timeout: float | None) -> list[Completion]:
        if self._buffer:
            quiet = time.monotonic() - self._last_buffered
            if quiet < SUBMIT_QUIET_SECONDS:  # more tasks may be coming: same batch
                self._poller.sleep(SUBMIT_QUIET_SECONDS - quiet)
                return []
            self._submit_buffered()
        return self._poller.wait(self._collect, timeout)

    def wakeup(self) -> None:
        self._poller.wakeup()

    def get_status(self) -> dict[str, Any]:
        return {
            "name": "boinc-remote",
            "url": self.url,
            "batches": sorted(self.record.batches),
            "jobs": {"not_submitted": len(self._buffer), "pending": self._pending_count},
        }

    def cleanup(self) -> None:
        """Retire the batch once every result was collected; else keep it for a rerun."""
        try:
            if self._pending_count or self._buffer:
                logger.info(
                    "keeping %d unfinished jobs in batches %s for a rerun",
                    self._pending_count + len(self._buffer),
                    sorted(self.record.batches),
                )
                return
            unused = {self._open_batch} if self._open_batch is not None else set()
            for batch_id in sorted(self.record.batches | unused):
                self.client.retire_batch(batch_id)
            self.record.path.unlink(missing_ok=True)
        except BoincRpcError as error:
            logger.warning("could not retire batches %s: %s", sorted(self.record.batches), error)
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
        try:
            batch_id = self._open_batch or self.client.create_batch(APP_NAME, _batch_name())
            self._open_batch = None
            jobs = [
                JobSpec(_job_name(batch_id, key), command, files)
                for key, _, command, files in self._buffer
            ]
            self.client.submit_batch(BatchSpec(APP_NAME, jobs, batch_id=batch_id))
        except BoincRpcError as error:
            raise _user_error(error) from None
        for key, task_id, _, _ in self._buffer:
            self.record.submitted[key] = batch_id
            self._await(batch_id, key, task_id)
        self.record.save()
        logger.info("submitted %d jobs as batch %d", len(jobs), batch_id)
        self._buffer.clear()

    @property
    def _pending_count(self) -> int:
        return sum(len(jobs) for jobs in self._pending.values())

    def _await(self, batch_id: int, key: str, task_id: int) -> None:
        self._pending.setdefault(batch_id, {})[_job_name(batch_id, key)] = task_id

    def _collect(self) -> list[Completion]:
        completions: list[Completion] = []
        for batch_id, pending in list(self._pending.items()):
            status = self.client.query_batch(batch_id)
            for job in status.jobs:
                task_id = pending.get(job.name)
                if task_id is None:
                    continue
                if status.state == BatchState.ABORTED and job.status not in ("done", "error"):
                    del pending[job.name]
                    completions.append(
                        Completion(
                            task_id, None, detail=f"batch {batch_id} was aborted on the server"
                        )
                    )
                elif job.status in ("done", "error"):
                    completion = self._completion(task_id, job)
                    if completion is not None:
                        del pending[job.name]
                        completions.append(completion)
            if not pending:
                del self._pending[batch_id]
        return completions

    def _completion(self, task_id: int, job) -> Completion | None:
        """The job's completion, or None while its output is not assimilated yet."""
        if job.status == "error" or not job.canonical_instance_id:
            reasons = "; ".join(job.errors) or f"exit status {job.exit_status}"
            return Completion(task_id, None, detail=f"BOINC job {job.name} failed: {reasons}")
        try:
            output = self.client.get_output(job.canonical_instance_id, 0, max_bytes=self.max_nbytes)
        except OutputUnavailableError as error:
            tries = self._output_tries[job.name] = self._output_tries.get(job.name, 0) + 1
            if tries < MAX_OUTPUT_TRIES:
                return None  # done on the server but not assimilated yet: ask again later
            return Completion(task_id, None, detail=f"job {job.name}: {error}")
        except OutputTooLargeError:
            return Completion(
                task_id, None, detail=f"job {job.name}: output over max_nbytes {self.max_nbytes}"
            )
        return Completion(task_id, output)
