"""The generic interface: real OS processes on this machine's cores.

Each worker is a `pymw.interfaces.local_worker` process fed over its stdin/stdout. In the
default persistent mode it runs task functions in-process, reused across tasks; with
`fresh_process=True`, or a custom worker app (`-c`, e.g. the frozen PyBOINC worker), every
task is a new process run through the worker contract, as a BOINC client would run it.

A reader thread per worker (not per task) turns its replies into events on one queue;
the master's dispatcher blocks on that queue in `wait()`. A worker that dies fails, or
requeues, only the job it was running, and is replaced.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..worker_app import WorkerApp, find_worker_app
from .base import Completion, Job
from .local_worker import encode_frame, read_frame
from .waiting import drain

logger = logging.getLogger("pymw.generic")

# Jobs sent ahead to a persistent worker hide the master's round trip. Deep only for
# short tasks: a long task must not hold others back while another worker idles.
PERSISTENT_PREFETCH = 2
SHORT_TASK_PREFETCH = 16
SHORT_TASK_SECONDS = 0.005
# Weight of the newest task in the running mean of task durations.
DURATION_SMOOTHING = 0.1
# Seconds a worker gets to exit after its stdin closes, before it is killed.
WORKER_EXIT_GRACE = 2.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(eq=False)
class LocalWorker:
    """One worker process and the jobs sent to it, oldest (the running one) first."""

    index: int
    process: subprocess.Popen
    in_flight: deque[int] = field(default_factory=deque)
    outbox: list[bytes] = field(default_factory=list)
    known_programs: set[str] = field(default_factory=set)
    alive: bool = True

    @property
    def name(self) -> str:
        return f"local-{self.index}"

    def __repr__(self) -> str:
        return f"<LocalWorker {self.name} pid={self.process.pid}>"


@dataclass(frozen=True)
class _Reply:
    worker: LocalWorker
    header: dict
    payload: bytes


@dataclass(frozen=True)
class _Exited:
    worker: LocalWorker


class GenericInterface:
    """Run tasks on `num_workers` local processes (default: one per core)."""

    def __init__(
        self,
        num_workers: int | None = None,
        python_loc: str = sys.executable,
        *,
        fresh_process: bool = False,
        custom_app_dir: str | os.PathLike | None = None,
        custom_args: tuple[str, ...] | list[str] = (),
    ) -> None:
        self._num_workers = num_workers or os.cpu_count() or 1
        if self._num_workers < 1:
            raise UserError(f"--num_workers must be at least 1, got {num_workers}")
        if not shutil.which(python_loc) and not os.path.exists(python_loc):
            raise UserError(f"Python interpreter {python_loc!r} not found; pass an existing path")
        self.python_loc = python_loc
        self.worker_app: WorkerApp | None = None
        if custom_app_dir is not None:
            self.worker_app = find_worker_app(custom_app_dir, custom_args)
        self.fresh_process = fresh_process or self.worker_app is not None
        self._mean_task_seconds: float | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._workers: list[LocalWorker] = []
        self._lock = threading.Lock()
        self._closed = False
        self._root = Path(tempfile.mkdtemp(prefix="pymw-"))
        self._scripts = self._root / "scripts"  # fresh-process scripts, one per program
        self._scripts.mkdir()
        self._kept_task_dirs = False

    @classmethod
    def from_options(cls, options: Any) -> GenericInterface:
        """`-n` workers; `-c DIR -a ZIP` runs every task with that frozen worker app."""
        app_args = getattr(options, "app_args", "") or ""
        if app_args and not getattr(options, "app_path", None):
            raise UserError("-a/--app_args is given without -c/--app_path; add -c dist/pyboinc")
        return cls(
            num_workers=getattr(options, "num_workers", None),
            fresh_process=getattr(options, "fresh_process", False),
            custom_app_dir=getattr(options, "app_path", None),
            custom_args=shlex.split(app_args),
        )

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def idle_workers(self) -> list[LocalWorker]:
        """A slot per job a worker can take now, idle workers first: prefetching onto a
        busy worker only hides the round trip; it must not keep an idle one waiting."""
        if not self._workers:
            self._workers = [self._spawn(index) for index in range(self._num_workers)]
        slots = [
            (len(worker.in_flight) + depth, worker.index, worker)
            for worker in self._workers
            if worker.alive
            for depth in range(self._capacity() - len(worker.in_flight))
        ]
        return [worker for *_, worker in sorted(slots, key=lambda slot: slot[:2])]

    def execute(self, job: Job, worker: LocalWorker) -> None:
        header: dict[str, Any] = {
            "task": job.task_id,
            "program": job.program.digest,
            "function": job.program.function_name,
        }
        if job.data_zip is not None:
            header["data_zip"] = str(job.data_zip)
        fresh = self.fresh_process or job.program.function_name is None
        if fresh:
            header.update(self._fresh_header(job))
        if job.program.digest not in worker.known_programs:
            header["script" if fresh else "code"] = (
                job.program.script if fresh else job.program.code
            )
            worker.known_programs.add(job.program.digest)
        worker.in_flight.append(job.task_id)
        worker.outbox.append(encode_frame(header, job.input_bytes))

    def wait(self, timeout: float | None) -> list[Completion]:
        self._flush()
        completions: list[Completion] = []
        for event in drain(self._events, timeout):
            if isinstance(event, _Reply):
                completions.append(self._completion(event))
            elif isinstance(event, _Exited):
                completions.extend(self._replace(event.worker))
        return completions

    def wakeup(self) -> None:
        self._events.put(None)

    def get_status(self) -> dict[str, Any]:
        mode = "fresh process" if self.fresh_process else "persistent"
        status: dict[str, Any] = {
            "name": "generic",
            "mode": mode,
            "workers_alive": sum(w.alive for w in self._workers),
            "worker_pids": [w.process.pid for w in self._workers if w.alive],
        }
        if self.worker_app is not None:
            status["worker_app"] = str(self.worker_app.executable)
        return status

    def cleanup(self) -> None:
        """Stop the workers and remove the work directory.

        Idle workers exit when their stdin closes; a worker still running a job the master
        gave up on (Ctrl-C, terminate) is killed at once rather than waited for.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for worker in self._workers:
            worker.alive = False
            if worker.in_flight:
                worker.process.terminate()
            _close_quietly(worker.process.stdin)
        for worker in self._workers:
            try:
                worker.process.wait(WORKER_EXIT_GRACE)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        if self._kept_task_dirs:
            logger.warning("task files kept in %s", self._root)
        else:
            shutil.rmtree(self._root, ignore_errors=True)

    @property
    def work_dir(self) -> Path:
        """Where workers run and fresh-process task files live (removed by cleanup)."""
        return self._root

    # --------------------------------------------------------------- internals

    def _capacity(self) -> int:
        if self.fresh_process:
            return 1
        mean = self._mean_task_seconds
        return (
            SHORT_TASK_PREFETCH
            if mean is not None and mean < SHORT_TASK_SECONDS
            else (PERSISTENT_PREFETCH)
        )

    def _flush(self) -> None:
        """Send the jobs `execute` queued, one write per worker per dispatch round."""
        for worker in self._workers:
            if worker.outbox:
                frames, worker.outbox = b"".join(worker.outbox), []
                try:
                    worker.process.stdin.write(frames)
                    worker.process.stdin.flush()
                except (BrokenPipeError, OSError, ValueError):
                    pass  # the worker died; its reader thread reports the exit and lost jobs

    def _spawn(self, index: int) -> LocalWorker:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_PACKAGE_ROOT, environment.get("PYTHONPATH")])
        )
        worker_dir = self._root / f"worker-{index}-{secrets.token_hex(3)}"
        worker_dir.mkdir()
        process = subprocess.Popen(
            [self.python_loc, "-m", "pymw.interfaces.local_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=worker_dir,
            env=environment,
            **_own_process_group(),
        )
        worker = LocalWorker(index, process)
        threading.Thread(
            target=self._read_replies, args=(worker,), daemon=True, name=f"pymw-{worker.name}"
        ).start()
        return worker

    def _read_replies(self, worker: LocalWorker) -> None:
        stream = worker.process.stdout
        while (frame := read_frame(stream)) is not None:
            self._events.put(_Reply(worker, *frame))
        self._events.put(_Exited(worker))

    def _completion(self, reply: _Reply) -> Completion:
        header = reply.header
        reply.worker.in_flight.remove(header["task"])
        seconds = header.get("seconds", 0.0)
        mean = self._mean_task_seconds
        self._mean_task_seconds = (
            seconds if mean is None else (mean + DURATION_SMOOTHING * (seconds - mean))
        )
        has_output = header.get("has_output", True)
        lost = not has_output
        return Completion(
            header["task"],
            reply.payload if has_output else None,
            exit_status=header.get("exit"),
            lost=lost,
            detail=header.get("detail", ""),
        )

    def _replace(self, worker: LocalWorker) -> list[Completion]:
        worker.alive = False
        status = worker.process.wait()
        how = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
        detail = f"worker process {worker.name} (pid {worker.process.pid}) {how}"
        lost = [
            Completion(task_id, None, lost=True, started=position == 0, detail=detail)
            for position, task_id in enumerate(worker.in_flight)
        ]
        worker.in_flight.clear()
        worker.outbox.clear()
        if not self._closed:
            logger.warning("%s; starting a replacement", detail)
            self._workers[self._workers.index(worker)] = self._spawn(worker.index)
        return lost

    def _fresh_header(self, job: Job) -> dict[str, Any]:
        if job.keep_files:
            self._kept_task_dirs = True
        header: dict[str, Any] = {
            "fresh": True,
            "script_path": str(self._scripts / f"{job.program.name}-{job.program.digest}.py"),
            "task_dir": str(self._root / "tasks" / f"{job.task_name}-{job.attempt}"),
            "keep": job.keep_files,
        }
        if self.worker_app is not None and job.program.function_name is not None:
            header["worker"] = [str(self.worker_app.executable)]
            header["stdlib_zip"] = str(self.worker_app.stdlib_zip)
        else:
            header["worker"] = [self.python_loc]
        return header


def _close_quietly(stream) -> None:
    try:
        stream.close()
    except OSError:
        pass


def _own_process_group() -> dict[str, Any]:
    """Keep Ctrl-C in the terminal from reaching workers: the master stops them itself."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}
