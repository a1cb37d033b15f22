"""Run one job on a long-lived worker: in-process, or as a fresh process on the contract.

In-process (a task function): the program's code is executed once per worker and its
function called for each task, so a task costs a round trip, not an interpreter. Fresh
(a user script, or every job with `fresh_process` or a custom worker app): the job's
files are written to a task folder and `<worker> <script> [zip] <input> <output>` runs,
exactly what a BOINC client does, so a BOINC app can be debugged on local cores.
"""

from __future__ import annotations

import linecache
import os
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Callable

from pyboinc import contract

from . import records

# How much of a failed task process's stderr to send back.
STDERR_TAIL_CHARS = 4000


def call_pickled(function: Callable, /, *args, **kwargs):
    """Call `function`, which came pickled among the task's arguments (codec="pickle"):
    how a bound method, a partial or a callable object travels, having no code to send."""
    return function(*args, **kwargs)


class Functions:
    """Task functions compiled from the code the master sent, once per program."""

    def __init__(self) -> None:
        self._by_digest: dict[str, Callable] = {}

    def get(self, digest: str, function_name: str, code: str | None) -> Callable:
        if digest not in self._by_digest:
            if code is None:
                raise contract.ContractError(f"program {digest} was never sent to this worker")
            filename = f"<pymw task {function_name}>"
            # Register the source so tracebacks from the task show its lines.
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            module = types.ModuleType(f"pymw_task_{function_name}")
            # dont_inherit: this file's `from __future__ import annotations` must not turn
            # the task's annotations into strings (dataclasses would then look them up).
            exec(compile(code, filename, "exec", dont_inherit=True), module.__dict__)
            self._by_digest[digest] = module.__dict__[function_name]
        return self._by_digest[digest]


class TaskRunner:
    """Runs jobs one at a time in the folder `work_dir` (shared by a master's local
    workers, or a rank's own). A function's fresh process is `app` (a custom worker app
    run with `stdlib_zip`) or this interpreter; a user script always runs with this
    interpreter."""

    def __init__(
        self, work_dir: str, app: str | None = None, stdlib_zip: str | None = None
    ) -> None:
        self.work_dir = work_dir
        self._app = app
        self._stdlib_zip = stdlib_zip
        self._functions = Functions()
        self._extracted: set[str] = set()
        self._child: subprocess.Popen | None = None

    def run(self, job: records.Job) -> records.Reply:
        """Run `job`; a failure to set it up is the task's error, never the worker's."""
        started = time.perf_counter()
        detail, oversize = "", 0
        try:
            data_zip = self._data_zip(job)
            if job.fresh or job.function is None:
                status, output, detail, oversize = self._run_fresh(job, data_zip)
            else:
                status, output = self._run_in_process(job, data_zip)
        except Exception as error:  # e.g. the worker app cannot start: fail the task, not us
            status, output, detail = None, None, f"{type(error).__name__}: {error}"
        if output is not None and job.max_output is not None and len(output) > job.max_output:
            output, oversize = None, len(output)
        seconds = time.perf_counter() - started
        return records.Reply(job.task_id, output, status, seconds, detail, oversize=oversize)

    def kill_child(self) -> None:
        """Stop the task process of a fresh job, if one runs (the master is gone)."""
        child = self._child
        if child is not None:
            child.kill()

    # ----------------------------------------------------------------- in-process

    def _run_in_process(self, job: records.Job, data_zip: str | None) -> tuple[int, bytes]:
        pickled = job.codec == contract.CODEC_PICKLE
        try:
            assert job.function is not None
            function = self._functions.get(job.program, job.function, job.source)
            if data_zip and data_zip not in self._extracted:
                contract.safe_extract(data_zip, os.getcwd())
                self._extracted.add(data_zip)
            args, _ = contract.decode_input(
                job.input, classes=contract.task_namespace(function), allow_pickle=pickled
            )
        except Exception as error:
            outcome = contract.call_task(_raiser(error), codec=job.codec)
        else:
            outcome = contract.call_task(function, args, codec=job.codec)
        status = contract.EXIT_OK if outcome.ok else contract.EXIT_TASK_FAILED
        return status, outcome.encoded

    def _data_zip(self, job: records.Job) -> str | None:
        """The archive's path here, written from the job the first time it came with one."""
        if job.data_zip is None:
            return None
        path = os.path.join(self.work_dir, job.data_zip)  # an absolute path stays as is
        if job.archive:
            contract.write_atomically(path, job.archive)
        return path

    # ---------------------------------------------------------------------- fresh

    def _run_fresh(
        self, job: records.Job, data_zip: str | None
    ) -> tuple[int, bytes | None, str, int]:
        files = contract.LOCAL_FILES
        task_dir = os.path.join(self.work_dir, "tasks", job.folder or str(job.task_id))
        os.makedirs(task_dir, exist_ok=True)
        _link_or_copy(self._script(job), os.path.join(task_dir, files.script))
        contract.write_atomically(os.path.join(task_dir, files.input), job.input)
        if data_zip:
            _link_or_copy(data_zip, os.path.join(task_dir, os.path.basename(data_zip)))
        if self._app is not None and job.function is not None:
            command = files.command([self._app], self._stdlib_zip)
        else:
            command = files.command([sys.executable])
        stderr_path = os.path.join(task_dir, contract.STDERR_FILE)
        with open(stderr_path, "wb") as stderr:
            self._child = subprocess.Popen(
                command, cwd=task_dir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
            status = self._child.wait()
            self._child = None
        output, detail, oversize = _read_output(
            os.path.join(task_dir, files.output), job.max_output, status, stderr_path
        )
        if not job.keep:
            shutil.rmtree(task_dir, ignore_errors=True)
        return status, output, detail, oversize

    def _script(self, job: records.Job) -> str:
        path = os.path.join(self.work_dir, "scripts", f"{job.program}.py")
        if not os.path.exists(path):
            if job.source is None:
                raise contract.ContractError(f"program {job.program} was never sent here")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            _write_shared(path, job.source.encode("utf-8"))
        return path


def _write_shared(path: str, data: bytes) -> None:
    """Write a file that other workers may be writing at the same moment (a master's
    workers share its scripts folder): each through its own temporary name, so that
    every rename puts a whole file in place."""
    temporary = f"{path}.{os.getpid()}.part"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def _read_output(
    path: str, cap: int | None, status: int, stderr_path: str
) -> tuple[bytes | None, str, int]:
    """(output, why there is none, its size if over `cap`): the size is checked before
    the file is read, so an oversized output never enters this worker's memory."""
    try:
        size = os.path.getsize(path)
    except OSError:
        with open(stderr_path, errors="replace") as handle:
            return None, _describe_exit(status, handle.read()[-STDERR_TAIL_CHARS:]), 0
    if cap is not None and size > cap:
        return None, "", size
    with open(path, "rb") as handle:
        return handle.read(), "", 0


def _describe_exit(status: int, stderr_tail: str) -> str:
    how = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
    tail = stderr_tail.strip()
    return f"{how}; stderr: {tail}" if tail else f"{how}, no output file and no stderr"


def _link_or_copy(source: str, target: str) -> None:
    if os.path.exists(target):
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _raiser(error: BaseException) -> Callable[[], None]:
    def raise_setup_error() -> None:
        raise error

    return raise_setup_error
