"""The MPI interface: PyMW tasks on the ranks of an MPI job (mpi4py).

Two launch styles, chosen by how the program was started::

    python examples/monte_pi.py -i mpi -n 4        # spawn: the master spawns 4 worker ranks
    mpiexec -n 5 python examples/monte_pi.py -i mpi  # mpiexec: rank 0 is the master

Under `mpiexec` every rank runs the user's script; building the interface on a rank other
than 0 runs the rank loop (`pymw_worker.mpi_ranks.serve`) and then exits that process, so
worker ranks never return into the script body. This is how clusters without dynamic
process management run PyMW.

How a job travels (records in frames, never pickles)::

    dispatcher ─execute─▶ link ─[pipe ▶ hub]─ Isend ─▶ rank k: pymw_worker.mpi_ranks
         ▲                                                      │
         └──── wait() ◀──── link ◀─[hub ◀ pipe]─ Improbe ◀──────┘ reply record

One thread calls MPI on the master side (the dispatcher under mpiexec, the hub's loop in
the spawn style): jobs go out with `Isend`, results are polled for with a backoff, since
MPICH's blocking calls spin a core. Jobs are sent ahead and recalled when they wait behind
a long job while another rank idles (`long_lived`).

Why a hub in the spawn style: MPI without fault tolerance (MPICH's default, and the PyPI
`mpich` wheel, whose MPIR_CVAR_ENABLE_FT fails an assertion) kills every process of a job,
the master included, when one rank dies. So the spawning master keeps MPI out of its own
process: a small hub subprocess (`pymw_worker.mpi_hub`) spawns the ranks and relays
messages over pipes. If a rank dies, MPI ends the hub and its ranks; the master sees the
pipe close, fails the jobs that were running (`Completion.lost`, retried up to
`max_retries`), requeues the ones that had not started, and starts a new hub. If the
master dies, the hub sees its pipe close and kills its ranks. Under `mpiexec` the master
is itself rank 0, so a dying rank ends the whole job: mpiexec exits with an error naming
the rank, it does not hang.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pymw_worker import frames, records
from pymw_worker.inbox import BACKOFF_MAX, BACKOFF_MIN
from pymw_worker.mpi_ranks import MASTER_RANK

from ..errors import UserError
from . import import_for
from .base import Completion, Job, WorkerSetup
from .long_lived import WORKER_EXIT_GRACE, Prefetch, WorkerState, completion_of
from .waiting import Poller, drain

# Here only to fail early, saying what to install; ranks and the hub import MPI itself.
import_for("mpi", "mpi4py")

logger = logging.getLogger("pymw.mpi")

# Environment variables a launcher (MPICH/Hydra, Open MPI, PMIx, Slurm) sets in each rank.
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK")
# Prefixes of the launcher's variables a hub must not inherit, or it would join our job.
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_")
# Jobs a rank holds at once, the running one included: enough to hide the round trip
# (through the hub, in the spawn style) behind short tasks; jobs queued behind a long
# task are recalled for an idle rank.
JOBS_PER_RANK = 4
# Seconds the hub gets to spawn its ranks and say so.
HUB_START_TIMEOUT = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def launched_by_mpiexec() -> bool:
    """True when this process is a rank of an mpiexec job (without initialising MPI)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


# -------------------------------------------------------------- links to the ranks


@dataclass(frozen=True)
class _JobEnded:
    """The MPI job behind the link ended (spawn style: the hub exited)."""

    link: _HubLink
    detail: str


class _DirectLink:
    """mpiexec style: this process is rank 0 of COMM_WORLD and talks MPI itself.

    Only the dispatcher thread calls MPI (in `send` and `receive`): no thread hand-offs
    on the path of a job, which is what makes short tasks fast. Ranks refuse an output
    over the job's cap themselves, before sending it.
    """

    mode = "mpiexec"

    def __init__(self) -> None:
        from mpi4py import MPI

        from pymw_worker.mpi_ranks import RankChannel

        self.channel = RankChannel(MPI.COMM_WORLD)
        self.ranks = self.channel.ranks
        self._poller = Poller(0.0, BACKOFF_MAX, growth=2, minimum=BACKOFF_MIN)
        self._lock = threading.Lock()  # cleanup() may come from another thread (atexit)

    def send(self, rank: int, record: records.Job | records.Recall) -> None:
        with self._lock:
            self.channel.send(rank, records.to_bytes(record))

    def receive(self, timeout: float | None, cap: int | None) -> list[records.Reply | _JobEnded]:
        """Replies that arrived, polling with a backoff; [] on timeout or wakeup. (`cap`
        is the ranks' to keep: an MPI message is received whole.)"""
        return self._poller.wait(self._poll, timeout)

    def _poll(self) -> list[records.Reply | _JobEnded]:
        with self._lock:
            messages = self.channel.poll()
        return [records.Reply.from_frame(frames.parse(message)) for message in messages]

    def wakeup(self) -> None:
        self._poller.wakeup()

    def close(self) -> None:
        with self._lock:
            self.channel.stop()

    def kill(self) -> None:
        """Nothing to kill: under mpiexec the job ends as a whole."""


class _HubLink:
    """Spawn style: a hub subprocess spawns the ranks and relays their messages."""

    mode = "spawn"

    def __init__(self, num_workers: int) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pymw_worker.mpi_hub",
                str(num_workers),
                "--parent",
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_hub_environment(),
            start_new_session=True,  # the hub, mpiexec and the ranks: one group to stop
        )
        self.ranks = list(range(num_workers))
        self.cap: int | None = None
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        started: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(
            target=self._read, args=(started,), daemon=True, name="pymw-mpi-hub"
        ).start()
        try:
            ready = started.get(timeout=HUB_START_TIMEOUT)
        except queue.Empty:
            ready = None
        if not ready:
            self.kill()
            raise UserError(f"cannot start {num_workers} MPI worker ranks: {self._failure()}")

    def receive(self, timeout: float | None, cap: int | None) -> list[records.Reply | _JobEnded]:
        """Replies relayed by the hub, or its end; [] on timeout or wakeup."""
        self.cap = cap
        return [event for event in drain(self._events, timeout) if event is not None]

    def wakeup(self) -> None:
        self._events.put(None)

    def _read(self, started: queue.SimpleQueue) -> None:
        stream = self.process.stdout
        try:
            first = frames.read(stream)
        except frames.FrameError:
            first = None
        started.put(first is not None and first.header.get("ready") == len(self.ranks))
        if first is None:
            return
        try:
            while (frame := frames.read(stream, self.cap)) is not None:
                self._events.put(records.Reply.from_frame(frame))
        except (frames.FrameError, KeyError) as error:
            logger.warning("the MPI hub sent a malformed frame (%s); stopping it", error)
            self.kill()
        self._events.put(_JobEnded(self, self._exit_detail()))

    def _exit_detail(self) -> str:
        try:
            status = self.process.wait(WORKER_EXIT_GRACE)
        except subprocess.TimeoutExpired:
            status = None
        how = f"killed by signal {-status}" if status and status < 0 else f"status {status}"
        return (
            f"the MPI job of {len(self.ranks)} ranks ended (hub {how}): a rank died, and MPI "
            "without fault tolerance ends every rank of a job with it"
        )

    def _failure(self) -> str:
        self.process.wait()
        lines = self.process.stderr.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else f"the MPI hub exited with status {self.process.returncode}"

    def send(self, rank: int, record: records.Job | records.Recall) -> None:
        try:
            frames.write(self.process.stdin, {"to": rank}, records.to_bytes(record))
        except (BrokenPipeError, OSError, ValueError):
            pass  # the hub died; the reader thread reports it and the lost jobs

    def close(self) -> None:
        try:
            frames.write(self.process.stdin, {"stop": True})
            self.process.stdin.close()
            self.process.wait(WORKER_EXIT_GRACE)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self) -> None:
        """Stop whatever is left of the hub's process group (mpiexec, proxies, ranks)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


def _hub_environment() -> dict[str, str]:
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(_LAUNCHER_PREFIXES)
    }
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_PACKAGE_ROOT, environment.get("PYTHONPATH")])
    )
    # MPICH without mpiexec runs the first `mpiexec` on PATH to spawn; make that the one
    # installed beside this interpreter (the `mpich` wheel), not another MPI's.
    interpreter_bin = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(interpreter_bin, "mpiexec")):
        environment["PATH"] = os.pathsep.join([interpreter_bin, environment.get("PATH", "")])
    return environment


# ------------------------------------------------------------------- the interface


@dataclass(eq=False)
class MPIRank(WorkerState):
    """One worker rank and the jobs sent to it."""

    rank: int = 0

    @property
    def name(self) -> str:
        return f"rank {self.rank}"

    def __repr__(self) -> str:
        return f"<MPIRank {self.rank}>"


class MPIInterface:
    """Run tasks on MPI ranks: spawned (`num_workers` of them) or those of mpiexec.

    Under mpiexec, constructing this on a rank other than 0 serves jobs until the master
    stops, then exits the process.
    """

    # Ranks are the user's own processes: `codec="pickle"` may be used.
    trusted_workers = True

    def __init__(self, num_workers: int | None = None) -> None:
        self._closed = False
        self._restarts = 0
        self._archives: dict[str, bytes] = {}
        self._prefetch = Prefetch(JOBS_PER_RANK, JOBS_PER_RANK)
        self._output_cap: int | None = None
        if launched_by_mpiexec():
            self._link: _DirectLink | _HubLink | None = self._join_mpiexec_job()
        else:
            if num_workers is not None and num_workers < 1:
                raise UserError(f"--num_workers must be at least 1, got {num_workers}")
            self._link = _HubLink(num_workers or os.cpu_count() or 1)
        self._ranks = [MPIRank(rank=rank) for rank in self._link.ranks]
        self._rank_of: dict[int, MPIRank] = {}
        self._set_up = False  # the ranks of this link were sent the initializer
        atexit.register(self.cleanup)  # under mpiexec, ranks wait for a stop until then

    def _join_mpiexec_job(self) -> _DirectLink:
        from mpi4py import MPI

        from pymw_worker.mpi_ranks import serve

        world = MPI.COMM_WORLD
        if world.Get_rank() != MASTER_RANK:
            serve(world)
            sys.exit(0)  # a worker rank never returns into the user's script
        if world.Get_size() < 2:
            raise UserError(
                "mpiexec started only one rank; run `mpiexec -n N` with N >= 2 (rank 0 is "
                "the master), or run without mpiexec to spawn workers (-n N)"
            )
        return _DirectLink()

    @classmethod
    def from_options(cls, options: Any) -> MPIInterface:
        """`-n` spawned workers; under mpiexec, the job's ranks (-n is then ignored). A
        custom worker app (-c) is refused by `get_interface`: ranks run their own Python."""
        return cls(num_workers=getattr(options, "num_workers", None))

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self._ranks)

    def configure_workers(self, setup: WorkerSetup) -> None:
        if setup.max_tasks is not None:
            raise UserError(
                "max_tasks_per_child needs the generic interface: MPI ranks live as long as "
                "their MPI job, so none can be replaced on its own"
            )
        self._prefetch.setup = setup

    def idle_workers(self) -> list[MPIRank]:
        if self._link is None and not self._closed:
            self._restart()
        if self._link is not None and not self._set_up:
            self._set_up = True
            for rank in self._ranks:
                setup = self._prefetch.setup_record(rank)
                if setup is not None:
                    self._link.send(rank.rank, setup)
        return self._prefetch.slots(self._ranks)

    def execute(self, job: Job, worker: MPIRank) -> None:
        archive = b""
        data_zip = None
        if job.data_zip is not None:
            data_zip = job.data_zip.name
            if data_zip not in worker.known_archives:
                archive = self._archive_bytes(job.data_zip)
                worker.known_archives.add(data_zip)
        self._output_cap = job.max_output_bytes
        record = self._prefetch.record(
            job,
            worker,
            fresh=job.program.function_name is None,  # a user script: run as its own process
            data_zip=data_zip,
            archive=archive,
        )
        self._rank_of[job.task_id] = worker
        self._link.send(worker.rank, record)

    def wait(self, timeout: float | None) -> list[Completion]:
        link = self._link
        if link is None:
            return []
        timeout = self._recall_stuck_jobs(link, timeout)
        completions: list[Completion] = []
        for event in link.receive(timeout, self._output_cap):
            if isinstance(event, records.Reply):
                completions.append(self._completion(event))
            elif isinstance(event, _JobEnded) and event.link is self._link:
                completions.extend(self._job_ended(event.detail))
        return completions

    def wakeup(self) -> None:
        link = self._link
        if link is not None:
            link.wakeup()

    def get_status(self) -> dict[str, Any]:
        return {
            "name": "mpi",
            "mode": self._mode,
            "ranks": len(self._ranks),
            "restarts": self._restarts,
        }

    def cleanup(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._link is not None:
            self._link.close()

    # --------------------------------------------------------------- internals

    @property
    def _mode(self) -> str:
        return _DirectLink.mode if launched_by_mpiexec() else _HubLink.mode

    def _archive_bytes(self, path: Path) -> bytes:
        key = str(path)
        if key not in self._archives:
            self._archives[key] = path.read_bytes()
        return self._archives[key]

    def _recall_stuck_jobs(
        self, link: _DirectLink | _HubLink, timeout: float | None
    ) -> float | None:
        """Send the recalls due now; returns `timeout`, shortened to when one may be."""
        now = time.monotonic()
        recalls, look_again = self._prefetch.recalls(self._ranks, now)
        for rank, recall in recalls:
            logger.info("recalling %d jobs queued on %s", len(recall.task_ids), rank.name)
            link.send(rank.rank, recall)
        if look_again is None:
            return timeout
        wait_for = max(0.0, look_again - now)
        return wait_for if timeout is None else min(timeout, wait_for)

    def _completion(self, reply: records.Reply) -> Completion:
        rank = self._rank_of.pop(reply.task_id, None)
        if rank is None:  # a failed initializer's reply: it was no task's
            return completion_of(reply)
        return self._prefetch.completion(rank, reply)

    def _job_ended(self, detail: str) -> list[Completion]:
        """Every job on every rank is lost; the running ones count as an attempt."""
        lost = []
        for rank in self._ranks:
            lost += [
                Completion(
                    task_id,
                    None,
                    lost=True,
                    started=position == 0,
                    detail=f"rank {rank.rank} was running it: {detail}",
                )
                for position, task_id in enumerate(rank.in_flight)
            ]
        logger.warning("%s", detail)
        self._link.kill()
        self._link = None
        self._ranks = [MPIRank(rank=rank.rank) for rank in self._ranks]
        self._rank_of.clear()
        self._set_up = False
        return lost

    def _restart(self) -> None:
        logger.warning("starting %d new MPI worker ranks", len(self._ranks))
        self._restarts += 1
        self._link = _HubLink(len(self._ranks))
