"""PyMW batches submitted to a BOINC project over HTTP: remote job submission.

    python examples/monte_pi.py -i boinc --url https://project.example/ --auth-file ~/.boinc_auth \\
        -a 1.00_python311.zip

For scientists with no shell on the BOINC server. The project's admin installs the
`pymw` app once (the BOINC interface's setup, `-i boinc -p <project>`); from then on any
machine submits with the account's authenticator. How a task travels::

    submit_task ─▶ execute(): job buffered ─▶ wait(): script and inputs uploaded
    (job_file.php, with the batch and a delete time) ─▶ submit_batch into this master's
    batch ─▶ volunteers run it ─▶ query_batch (polled with backoff) says done
    ─▶ get_output3.php, size-limited; an empty answer is "not assimilated yet": asked
    again with backoff, for up to OUTPUT_WAIT_SECONDS ─▶ master decodes it with the
    safe codec ─▶ future / get_result

Tasks submitted together go as one batch: BOINC takes jobs only into a batch that is
still being made, so a master that submits in waves (MapReduce) makes a batch per wave.
A resume file in the task directory names each submitted job's batch, and job names come
from task content, so an interrupted master run again reattaches to its batches instead
of submitting again. Batches are retired once every result is collected.

Files outlive BOINC's file_deleter, which deletes a workunit's inputs when that workunit
is assimilated without asking whether another one names them. A script is shared by
every job of every batch of its program, under its content name `jf_<md5>`: the app's
input template marks it `<no_delete/>`, and each batch that uses it tells job_file.php
so (`batch_id`, and a `delete_time` JOB_FILE_KEEP_SECONDS ahead), which is how BOINC's
own job-file deleter (html/ops/delete_job_files) knows to keep it. An input belongs to
one job and is named after it (`<job name>_in`), so deleting it with its workunit is
right; sent inline it would be `jf_<md5 of the data>`, shared by every job with the
same input, in this batch or the next run's.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyboinc.contract import BOINC_FILES

from ...errors import UserError
from ..base import Completion, Job
from ..task_keys import TaskKeys
from ..waiting import Poller
from .constants import APP_NAME, DEFAULT_MAX_NBYTES
from .project import write_if_changed
from .rpc import (
    BatchSpec,
    BatchState,
    BoincRpcClient,
    BoincRpcError,
    InputFile,
    JobSpec,
    JobStatus,
    OutputNotReadyError,
    OutputTooLargeError,
    OutputUnavailableError,
    RemoteError,
    check_project_url,
    physical_name,
)

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
# query_batch says done when the canonical result is chosen; the assimilator moves the
# output seconds later (about 6 s was seen), and get_output3.php serves an empty file
# until then. Such a job's output is asked for again after OUTPUT_RETRY_FIRST seconds,
# doubling up to OUTPUT_RETRY_MAX, and the task fails once OUTPUT_WAIT_SECONDS have
# passed: minutes, for an assimilator that is busy with a large batch or restarting.
OUTPUT_RETRY_FIRST = 2.0
OUTPUT_RETRY_MAX = 30.0
OUTPUT_WAIT_SECONDS = 300.0
# Uploaded files are recorded with a delete time this far ahead (job_file.php's
# delete_time): longer than a batch of PyMW's default workunits (one-day deadline,
# resends) lasts. Each later batch that uses a file moves it forward again.
JOB_FILE_KEEP_SECONDS = 14 * 86400
# What job_file.php says when the web server's user cannot write download/ (a project
# made by make_project does not let it): move_uploaded_file() failed, or the .md5 file
# beside it could not be made. The project's admin must fix the modes.
DOWNLOAD_NOT_WRITABLE = re.compile(
    r"could not move \S+ to \S*/download/|check permissions in download", re.IGNORECASE
)


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


def _user_error(url: str, error: BoincRpcError) -> UserError:
    """A failed call as the one line a user reads: where, what, and who must act."""
    if isinstance(error, RemoteError):
        if DOWNLOAD_NOT_WRITABLE.search(error.message):
            return UserError(
                f"the BOINC project at {url} cannot store uploaded input files "
                f"({error.message}); its admin must let the web server's user write the "
                "project's download/ directory and its subdirectories"
            )
        return UserError(f"the BOINC project at {url} refused the request: {error.message}")
    return UserError(str(error))


@dataclass
class _BufferedJob:
    """A job waiting for the next submit_batch: what its files and command line hold."""

    key: str
    task_id: int
    command: str
    script_name: str
    script: bytes
    input_bytes: bytes


@dataclass
class _OutputWait:
    """A job done on the server whose output was not served yet: when to ask again."""

    since: float
    next_try: float
    delay: float


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
        try:
            self.client = BoincRpcClient(self.url, authenticator)
        except BoincRpcError as error:
            raise _user_error(self.url, error) from None
        self.record = ResumeRecord.load(self.task_dir / RESUME_FILE, self.url)
        self._open_batch: int | None = None
        try:
            # Fails early, on one line, for a wrong URL, authenticator or missing app.
            for batch_id in self.record.batches:
                self.client.query_batch(batch_id, job_details=False)
            if not self.record.submitted:
                self._open_batch = self.client.create_batch(APP_NAME, _batch_name())
        except BoincRpcError as error:
            raise _user_error(self.url, error) from None
        self._keys = TaskKeys()
        self._scripts: dict[str, tuple[str, bytes]] = {}  # program digest -> name, bytes
        self._buffer: list[_BufferedJob] = []
        self._reattached = False  # whether a task's job came from an earlier run
        self._pending: dict[int, dict[str, int]] = {}  # batch -> job name -> task id
        self._poller = Poller(POLL_MIN, POLL_MAX)
        self._last_buffered = 0.0
        self._output_waits: dict[str, _OutputWait] = {}

    @classmethod
    def from_options(cls, options: Any) -> BOINCRemoteInterface:
        if getattr(options, "project_home", None):
            raise UserError("give either -p (a project on this machine) or --url, not both")
        if getattr(options, "app_path", None):
            raise UserError("--url uses the workers the project's admin installed: drop -c")
        if getattr(options, "quorum", None):
            raise UserError(
                "-q works with -p only: remote batches are replicated as the project's "
                "templates/pymw_in says (2 runs, none checked); drop -q"
            )
        try:
            check_project_url(options.url)
        except BoincRpcError as error:
            raise UserError(f"--url {error}") from None
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
            if not self._reattached:
                self._reattached = True
                logger.info(
                    "reattaching to the jobs an earlier run submitted to %s: their results "
                    "are awaited, not submitted again",
                    self.url,
                )
            self._await(self.record.submitted[key], key, job.task_id)
            return
        command = BOINC_FILES.command([], self.stdlib_zip)
        script_name, script = self._script(job)
        self._buffer.append(
            _BufferedJob(key, job.task_id, " ".join(command), script_name, script, job.input_bytes)
        )
        self._last_buffered = time.monotonic()

    def wait(self, timeout: float | None) -> list[Completion]:
        try:
            if self._buffer:
                quiet = time.monotonic() - self._last_buffered
                if quiet < SUBMIT_QUIET_SECONDS:  # more tasks may be coming: same batch
                    self._poller.sleep(SUBMIT_QUIET_SECONDS - quiet)
                    return []
                self._submit_buffered()
            return self._poller.wait(self._collect, timeout)
        except BoincRpcError as error:
            # The master ends a CLI program on a UserError with this one line, exit 2.
            raise _user_error(self.url, error) from None

    def wakeup(self) -> None:
        self._poller.wakeup()

    def get_status(self) -> dict[str, Any]:
        return {
            "name": "boinc-remote",
            "url": self.url,
            "batches": sorted(self.record.batches),
            "jobs": {
                "not_submitted": len(self._buffer),
                "pending": self._pending_count,
                "awaiting_output": len(self._output_waits),
            },
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

    def _script(self, job: Job) -> tuple[str, bytes]:
        """A program's script and its content name, made once per program."""
        digest = job.program.digest
        if digest not in self._scripts:
            script = job.program.script.encode()
            self._scripts[digest] = (physical_name(script), script)
        return self._scripts[digest]

    def _submit_buffered(self) -> None:
        """Upload what the buffered jobs need, then submit them as one batch.

        Every file is uploaded with the batch's id and a delete time, scripts a batch
        shares with earlier ones included: job_file.php then keeps them for this batch
        (only those the server lacks are sent again).
        """
        batch_id = self._open_batch or self.client.create_batch(APP_NAME, _batch_name())
        self._open_batch = None
        files: dict[str, bytes] = {}
        jobs = []
        for buffered in self._buffer:
            name = _job_name(batch_id, buffered.key)
            files[buffered.script_name] = buffered.script
            files[f"{name}_in"] = buffered.input_bytes
            staged = [InputFile.staged(buffered.script_name), InputFile.staged(f"{name}_in")]
            jobs.append(JobSpec(name, buffered.command, staged))
        delete_time = int(time.time() + JOB_FILE_KEEP_SECONDS)
        self.client.upload_data(files, batch_id=batch_id, delete_time=delete_time)
        self.client.submit_batch(BatchSpec(APP_NAME, jobs, batch_id=batch_id))
        for buffered in self._buffer:
            self.record.submitted[buffered.key] = batch_id
            self._await(batch_id, buffered.key, buffered.task_id)
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

    def _completion(self, task_id: int, job: JobStatus) -> Completion | None:
        """The job's completion, or None while its output is not assimilated yet."""
        if job.status == "error" or not job.canonical_instance_id:
            reasons = "; ".join(job.errors) or f"exit status {job.exit_status}"
            return Completion(task_id, None, detail=f"BOINC job {job.name} failed: {reasons}")
        now = time.monotonic()
        waiting = self._output_waits.get(job.name)
        if waiting is not None and now < waiting.next_try:
            return None
        try:
            output = self.client.get_output(job.canonical_instance_id, 0, max_bytes=self.max_nbytes)
        except OutputNotReadyError as error:
            if waiting is None:
                waiting = self._output_waits[job.name] = _OutputWait(now, now, OUTPUT_RETRY_FIRST)
            if now - waiting.since < OUTPUT_WAIT_SECONDS:
                waiting.next_try = now + waiting.delay
                waiting.delay = min(OUTPUT_RETRY_MAX, 2 * waiting.delay)
                return None  # done on the server, not assimilated yet: ask again later
            del self._output_waits[job.name]
            return Completion(
                task_id,
                None,
                detail=f"job {job.name}: no output {OUTPUT_WAIT_SECONDS:.0f} s after BOINC "
                f"reported it done; is the project's assimilator running? ({error})",
            )
        except OutputUnavailableError as error:
            return Completion(task_id, None, detail=f"job {job.name}: {error}")
        except OutputTooLargeError:
            return Completion(
                task_id, None, detail=f"job {job.name}: output over max_nbytes {self.max_nbytes}"
            )
        self._output_waits.pop(job.name, None)
        return Completion(task_id, output)
