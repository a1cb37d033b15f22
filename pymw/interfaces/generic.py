"""The generic interface: real OS processes on this machine's cores.

Each worker is a `pymw_worker.persistent` process fed job records over its stdin and
answering with reply records on its stdout. In the default persistent mode it runs task
functions in-process, reused across tasks; with `fresh_process=True`, or a custom worker
app (`-c`, e.g. the frozen PyBOINC worker), every task is a new process run through the
worker contract's files, as a BOINC client would run it.

The master's dispatcher reads the workers' pipes itself in `wait()`, blocking in one
`select` on all of them and on a wakeup pipe: a reply reaches the master with no thread
hand-off, and a burst of replies is one read. Jobs are sent ahead and
recalled when they wait behind a long job while another worker idles (`long_lived`). A
worker that dies fails, or requeues, only the jobs it held, and is replaced. A worker
exits as soon as its master's pipe closes, so a killed master leaves none behind.
"""

from __future__ import annotations

import logging
import os
import selectors
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymw_worker import frames, records

from ..errors import UserError
from ..worker_app import WorkerApp, find_worker_app
from .base import Completion, Job, WorkerSetup
from .long_lived import WORKER_EXIT_GRACE, Prefetch, WorkerState

logger = logging.getLogger("pymw.generic")

# Jobs a persistent worker holds, the running one included: a few hide the master's
# round trip; many only while tasks are short.
PERSISTENT_PREFETCH = 2
SHORT_TASK_PREFETCH = 16
# The pipe buffer asked of Linux for each worker's pipes (64 KiB by default): a 1 MB input
# or output then crosses in a few writes instead of sixteen hand-offs between processes.
PIPE_BYTES = 1 << 20
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


@dataclass(eq=False)
class LocalWorker(WorkerState):
    """One worker process and the jobs sent to it."""

    index: int = 0
    process: subprocess.Popen | None = None
    outbox: list[bytes] = field(default_factory=list)
    reader: frames.FrameReader | None = None  # of its replies pipe
    # Its jobs pipe while the dispatcher waits for room in it to send the outbox's rest.
    waiting_to_write: int | None = None

    @property
    def name(self) -> str:
        return f"local-{self.index}"

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<LocalWorker {self.name} pid={pid}>"


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
        if os.name != "posix":  # the dispatcher selects on the workers' pipes
            raise UserError(
                "the generic interface runs on Linux and macOS; on Windows, run the master "
                "under WSL"
            )
        if num_workers is not None and num_workers < 1:  # None is "all cores"; 0 a mistake
            raise UserError(f"--num_workers must be at least 1, got {num_workers}")
        self._num_workers = num_workers or os.cpu_count() or 1
        if not shutil.which(python_loc) and not os.path.exists(python_loc):
            raise UserError(f"Python interpreter {python_loc!r} not found; pass an existing path")
        self.python_loc = python_loc
        self.worker_app: WorkerApp | None = None
        if custom_app_dir is not None:
            self.worker_app = find_worker_app(custom_app_dir, custom_args)
        self.fresh_process = fresh_process or self.worker_app is not None
        self._prefetch = Prefetch(
            1 if self.fresh_process else PERSISTENT_PREFETCH,
            1 if self.fresh_process else SHORT_TASK_PREFETCH,
        )
        # The dispatcher's one wait: every worker's replies pipe, and `wakeup`'s pipe.
        self._selector = selectors.DefaultSelector()
        self._wakeup_read, self._wakeup_write = os.pipe()
        os.set_blocking(self._wakeup_read, False)
        os.set_blocking(self._wakeup_write, False)
        self._selector.register(self._wakeup_read, selectors.EVENT_READ)
        self._workers: list[LocalWorker] = []
        self._lock = threading.Lock()
        self._closed = False
        # True while the dispatcher is inside `wait`, using the pipes and the selector:
        # then `cleanup` leaves their closing to it (see _stop_workers) and waits for it.
        self._waiting = False
        self._stopped = threading.Event()
        self._output_cap: int | None = None
        self._setup_failed = False  # a worker's initializer failed: the master breaks
        self._root = Path(tempfile.mkdtemp(prefix="pymw-"))
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

    @property
    def trusted_workers(self) -> bool:
        """Persistent workers are this user's own processes: they may use the pickle
        codec. Fresh processes run task scripts, which decode the safe codec only."""
        return not self.fresh_process

    def configure_workers(self, setup: WorkerSetup) -> None:
        if setup.initializer is not None and self.fresh_process:
            raise UserError(
                "an initializer needs persistent workers: with fresh_process or a custom "
                "worker app (-c) every task starts a new process; drop one or the other"
            )
        if setup.max_tasks is not None and setup.max_tasks < 1:
            raise UserError(f"max_tasks_per_child must be at least 1, got {setup.max_tasks}")
        self._prefetch.setup = setup

    def idle_workers(self) -> list[LocalWorker]:
        if self._closed:  # never a worker started after cleanup, which nobody would stop
            return []
        if not self._workers:
            self._workers = [self._spawn(index) for index in range(self._num_workers)]
        return self._prefetch.slots(self._workers)

    def execute(self, job: Job, worker: LocalWorker) -> None:
        fresh = self.fresh_process or job.program.function_name is None
        if fresh and job.keep_files:
            self._kept_task_dirs = True
        self._output_cap = job.max_output_bytes
        data_zip = str(job.data_zip) if job.data_zip is not None else None
        record = self._prefetch.record(job, worker, fresh=fresh, data_zip=data_zip)
        worker.outbox.extend(record.pieces())

    def wait(self, timeout: float | None) -> list[Completion]:
        with self._lock:
            if self._closed:
                return self._lost_at_close()
            self._waiting = True
        completions: list[Completion] = []
        try:
            timeout = self._recall_stuck_jobs(timeout)
            self._flush()
            writable = False
            for key, _ in self._selector.select(timeout):
                worker = key.data
                if worker is None:
                    _drain_pipe(self._wakeup_read)
                elif key.fd == worker.waiting_to_write:
                    writable = True
                else:
                    self._read_replies(worker, completions)
            if writable:
                self._flush()
        finally:
            with self._lock:
                self._waiting = False
                stopping = self._closed
            if stopping:  # cleanup ran meanwhile, from another thread: finish it here
                try:
                    self._stop_workers()
                finally:
                    self._stopped.set()
        if stopping:
            completions.extend(self._lost_at_close())
        return completions

    def wakeup(self) -> None:
        with self._lock:  # never a write to the pipe's number once cleanup closed it
            if not self._closed:
                try:
                    os.write(self._wakeup_write, b"\0")
                except BlockingIOError:  # full of wakeups not read yet: one is enough
                    pass

    def get_status(self) -> dict[str, Any]:
        mode = "fresh process" if self.fresh_process else "persistent"
        alive = [worker for worker in self._workers if worker.alive]
        status: dict[str, Any] = {
            "name": "generic",
            "mode": mode,
            "workers_alive": len(alive),
            "worker_pids": [worker.process.pid for worker in alive if worker.process],
        }
        if self.worker_app is not None:
            status["worker_app"] = str(self.worker_app.executable)
        return status

    def cleanup(self) -> None:
        """Stop the workers and remove the work directory.

        A worker exits as soon as its pipe closes, even in the middle of a job the master
        gave up on (Ctrl-C, terminate); one that does not is killed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # Its end wakes a dispatcher that waits in select with nothing else to read.
            os.close(self._wakeup_write)
            dispatcher_waiting = self._waiting
        if dispatcher_waiting:
            # The dispatcher uses the pipes' numbers until its select returns: closed
            # under it, a number could be reused by another file it would then read or
            # write, and a select left with no pipe in it would never return.
            self._stopped.wait()
        else:
            self._stop_workers()
        if self._kept_task_dirs:
            logger.warning("task files kept in %s", self._root)
        else:
            shutil.rmtree(self._root, ignore_errors=True)

    def _stop_workers(self) -> None:
        """Close every worker's jobs pipe, kill one that outlives the grace, close the rest."""
        for worker in self._workers:
            worker.alive = False
            _close_quietly(worker.process.stdin)
        for worker in self._workers:
            try:
                worker.process.wait(WORKER_EXIT_GRACE)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        for worker in self._workers:
            _close_quietly(worker.process.stdout)
        self._selector.close()
        os.close(self._wakeup_read)

    @property
    def work_dir(self) -> Path:
        """Where workers run and fresh-process task files live (removed by cleanup)."""
        return self._root

    # --------------------------------------------------------------- internals

    def _recall_stuck_jobs(self, timeout: float | None) -> float | None:
        """Queue the recalls due now; returns `timeout`, shortened to when one may be."""
        now = time.monotonic()
        recalls, look_again = self._prefetch.recalls(self._workers, now)
        for worker, recall in recalls:
            logger.info("recalling %d jobs queued on %s", len(recall.task_ids), worker.name)
            worker.outbox.extend(recall.pieces())
        if look_again is None:
            return timeout
        wait_for = max(0.0, look_again - now)
        return wait_for if timeout is None else min(timeout, wait_for)

    def _flush(self) -> None:
        """Send what `execute` queued, as much as each worker's pipe takes now. A write
        never blocks the dispatcher: it must go on reading every worker's replies, or a
        worker blocked on its full replies pipe, never reading its jobs pipe, would block
        the master too. The rest goes when the selector finds room in the pipe."""
        for worker in self._workers:
            if worker.outbox:
                try:
                    worker.outbox = frames.write_some(worker.process.stdin.fileno(), worker.outbox)
                except (OSError, ValueError):
                    worker.outbox = []  # died: the end of its replies pipe reports the jobs
                self._wait_to_write(worker, bool(worker.outbox))

    def _wait_to_write(self, worker: LocalWorker, waiting: bool) -> None:
        if waiting and worker.waiting_to_write is None:
            worker.waiting_to_write = worker.process.stdin.fileno()
            self._selector.register(worker.waiting_to_write, selectors.EVENT_WRITE, worker)
        elif not waiting and worker.waiting_to_write is not None:
            self._selector.unregister(worker.waiting_to_write)
            worker.waiting_to_write = None

    def _spawn(self, index: int) -> LocalWorker:
        environment = dict(os.environ)
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [_PACKAGE_ROOT, environment.get("PYTHONPATH")])
        )
        # os.urandom, not secrets: secrets loads OpenSSL, megabytes of the master's RSS
        worker_dir = self._root / f"worker-{index}-{os.urandom(3).hex()}"
        worker_dir.mkdir()
        command = [
            self.python_loc,
            "-m",
            "pymw_worker.persistent",
            "--work-dir",
            str(self._root),
            "--parent",
            str(os.getpid()),
        ]
        if self.worker_app is not None:
            command += ["--app", str(self.worker_app.executable)]
            command += ["--stdlib-zip", self.worker_app.zip_argument()]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=worker_dir,
            env=environment,
            **_own_process_group(),
        )
        _widen_pipes(process.stdin, process.stdout)
        os.set_blocking(process.stdin.fileno(), False)  # see _flush
        replies = process.stdout.fileno()
        worker = LocalWorker(index=index, process=process, reader=frames.FrameReader(replies))
        setup = self._prefetch.setup_record(worker)
        if setup is not None:
            worker.outbox.extend(setup.pieces())
        self._selector.register(replies, selectors.EVENT_READ, worker)
        return worker

    def _read_replies(self, worker: LocalWorker, completions: list[Completion]) -> None:
        """Take the replies a worker's pipe holds now; at its end, the worker is gone."""
        try:
            frames_read = worker.reader.read(self._output_cap)
            replies = [records.Reply.from_frame(frame) for frame in frames_read or ()]
        except (frames.FrameError, records.RecordError, KeyError) as error:
            logger.warning("%s sent a malformed frame (%s); stopping it", worker.name, error)
            worker.process.kill()
            frames_read, replies = None, []
        if frames_read is None:
            self._selector.unregister(worker.reader.fd)
            self._wait_to_write(worker, False)
            _close_quietly(worker.process.stdout)
            completions.extend(self._replace(worker))
            return
        for reply in replies:
            if reply.status == records.SETUP_FAILED:
                self._setup_failed = True
            completions.append(self._prefetch.completion(worker, reply))
        if replies and self._prefetch.retiring(worker):
            self._retire(worker)

    def _lost_at_close(self) -> list[Completion]:
        """Once the workers are stopped, the jobs they held will never answer."""
        lost = [
            Completion(task_id, None, lost=True, detail="the engine was stopped")
            for worker in self._workers
            for task_id in worker.in_flight
        ]
        for worker in self._workers:
            worker.in_flight.clear()
        return lost

    def _retire(self, worker: LocalWorker) -> None:
        """Replace a worker that ran its max_tasks (ProcessPoolExecutor's max_tasks_per_child)."""
        worker.alive = False
        self._wait_to_write(worker, False)
        _close_quietly(worker.process.stdin)
        self._workers[self._workers.index(worker)] = self._spawn(worker.index)

    def _replace(self, worker: LocalWorker) -> list[Completion]:
        status = worker.process.wait()
        if worker not in self._workers:  # retired: its replacement already runs
            return []
        worker.alive = False
        how = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
        detail = f"worker process {worker.name} (pid {worker.process.pid}) {how}"
        lost = [
            Completion(task_id, None, lost=True, started=position == 0, detail=detail)
            for position, task_id in enumerate(worker.in_flight)
        ]
        worker.in_flight.clear()
        worker.outbox.clear()
        if not self._closed and not self._setup_failed:
            logger.warning("%s; starting a replacement", detail)
            self._workers[self._workers.index(worker)] = self._spawn(worker.index)
        return lost


def _drain_pipe(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _close_quietly(stream) -> None:
    try:
        stream.close()
    except OSError:
        pass


def _widen_pipes(*streams) -> None:
    """Ask for PIPE_BYTES pipe buffers (Linux only; past the system's limit, or elsewhere,
    the pipes stay as they are)."""
    try:
        import fcntl

        set_size = fcntl.F_SETPIPE_SZ
    except (ImportError, AttributeError):
        return
    for stream in streams:
        try:
            fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)
        except OSError:  # over /proc/sys/fs/pipe-max-size, or the user's pipe quota
            return


def _own_process_group() -> dict[str, Any]:
    """Keep Ctrl-C in the terminal from reaching workers: the master stops them itself."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}
