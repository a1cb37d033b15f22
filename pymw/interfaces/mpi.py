"""The MPI interface: PyMW tasks on the ranks of an MPI job (mpi4py).

Two launch styles, chosen by how the program was started::

    python examples/monte_pi.py -i mpi -n 4        # spawn: the master spawns 4 worker ranks
    mpiexec -n 5 python examples/monte_pi.py -i mpi  # mpiexec: rank 0 is the master

Under `mpiexec` every rank runs the user's script; building the interface on a rank other
than 0 runs the worker loop (`mpi_worker.serve`) and then exits that process, so worker
ranks never return into the script body. This is how clusters without dynamic process
management run PyMW.

How a job travels (all messages are bytes, never pickles)::

    dispatcher ─execute─▶ link ─[pipe ▶ hub]─ Isend ─▶ rank k: mpi_worker.serve
         ▲                                                      │
         └──── wait() ◀──── link ◀─[hub ◀ pipe]─ Improbe ◀──────┘ output envelope

One thread calls MPI on the master side (the dispatcher under mpiexec, the hub's loop in
the spawn style): jobs go out with `Isend`, results are polled for with a backoff, since
MPICH's blocking calls spin a core.

Why a hub in the spawn style: MPI without fault tolerance (MPICH's default, and the PyPI
`mpich` wheel, whose MPIR_CVAR_ENABLE_FT fails an assertion) kills every process of a job,
the master included, when one rank dies. So the spawning master keeps MPI out of its own
process: a small hub subprocess (`python -m pymw.interfaces.mpi`) spawns the ranks and
relays messages over pipes. If a rank dies, MPI ends the hub and its ranks; the master
sees the pipe close, fails the jobs that were running (`Completion.lost`, retried up to
`max_retries`), requeues the ones that had not started, and starts a new hub. Under
`mpiexec` the master is itself rank 0, so a dying rank ends the whole job: mpiexec exits
with an error naming the rank, it does not hang.
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
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mpi4py  # noqa: F401  (a missing mpi4py is reported by get_interface with the fix)

from ..errors import UserError
from .base import Completion, Job
from .generic import WORKER_EXIT_GRACE
from .local_worker import read_frame, write_frame
from .mpi_worker import (
    BACKOFF_MAX,
    BACKOFF_MIN,
    MASTER_RANK,
    TAG_JOB,
    TAG_RESULT,
    TAG_STOP,
    Backoff,
    pack,
    unpack,
)
from .waiting import Poller, drain

logger = logging.getLogger("pymw.mpi")

# Environment variables a launcher (MPICH/Hydra, Open MPI, PMIx, Slurm) sets in each rank.
_LAUNCHER_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK")
# Prefixes of the launcher's variables a hub must not inherit, or it would join our job.
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_")
# Jobs a rank holds at once, the running one included: enough to hide the round trip
# (through the hub, in the spawn style) behind short tasks; more would queue work behind
# a long task that another rank could have run.
JOBS_PER_RANK = 4
# Seconds the hub gets to spawn its ranks and say so.
HUB_START_TIMEOUT = 60.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


def launched_by_mpiexec() -> bool:
    """True when this process is a rank of an mpiexec job (without initialising MPI)."""
    return any(name in os.environ for name in _LAUNCHER_VARIABLES)


# --------------------------------------------------------------------- the MPI side


class RankChannel:
    """The master's end of a communicator with worker ranks, driven by one thread.

    Jobs go out with `Isend`, so a rank busy with a long task never blocks the master;
    `poll` completes sends and returns the results that arrived, without blocking.
    """

    def __init__(self, comm) -> None:
        from mpi4py import MPI

        from .mpi_worker import receive_bytes

        self._MPI, self._receive_bytes = MPI, receive_bytes
        self.comm = comm
        self._sending: list[tuple[Any, bytes]] = []  # requests and the buffers they read
        first = 0 if comm.Is_inter() else 1
        size = comm.Get_remote_size() if comm.Is_inter() else comm.Get_size() - 1
        self.ranks = list(range(first, first + size))

    def send(self, rank: int, message: bytes, *, tag: int | None = None) -> None:
        tag = TAG_JOB if tag is None else tag
        request = self.comm.Isend([message, self._MPI.BYTE], rank, tag)
        self._sending.append((request, message))

    def poll(self) -> list[tuple[int, bytes]]:
        if self._sending:
            self._sending = [item for item in self._sending if not item[0].Test()]
        results = []
        while received := self._receive_bytes(self.comm, self._MPI.ANY_SOURCE, TAG_RESULT):
            results.append((received[0], bytes(received[2])))
        return results

    def stop(self) -> None:
        """Tell every rank to stop and wait until each was told."""
        for rank in self.ranks:
            self.send(rank, b"", tag=TAG_STOP)
        self._MPI.Request.Waitall([request for request, _ in self._sending])
        self._sending.clear()


# -------------------------------------------------------------- links to the ranks


@dataclass(frozen=True)
class _Result:
    rank: int
    message: bytes


@dataclass(frozen=True)
class _JobEnded:
    """The MPI job behind the link ended (spawn style: the hub exited)."""

    link: _HubLink
    detail: str


class _DirectLink:
    """mpiexec style: this process is rank 0 of COMM_WORLD and talks MPI itself.

    Only the dispatcher thread calls MPI (in `send` and `receive`): no thread hand-offs
    on the path of a job, which is what makes short tasks fast.
    """

    mode = "mpiexec"

    def __init__(self) -> None:
        from mpi4py import MPI

        self.channel = RankChannel(MPI.COMM_WORLD)
        self.ranks = self.channel.ranks
        self._poller = Poller(0.0, BACKOFF_MAX, growth=2, minimum=BACKOFF_MIN)
        self._lock = threading.Lock()  # cleanup() may come from another thread (atexit)

    def send(self, rank: int, message: bytes) -> None:
        with self._lock:
            self.channel.send(rank, message)

    def receive(self, timeout: float | None) -> list[_Result | _JobEnded]:
        """Results that arrived, polling with a backoff; [] on timeout or wakeup."""
        return self._poller.wait(self._poll, timeout)

    def _poll(self) -> list[_Result | _JobEnded]:
        with self._lock:
            return [_Result(rank, message) for rank, message in self.channel.poll()]

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
            [sys.executable, "-m", "pymw.interfaces.mpi", str(num_workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_hub_environment(),
            start_new_session=True,  # the hub, mpiexec and the ranks: one group to stop
        )
        self.ranks = list(range(num_workers))
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

    def receive(self, timeout: float | None) -> list[_Result | _JobEnded]:
        """Results relayed by the hub, or its end; [] on timeout or wakeup."""
        return [event for event in drain(self._events, timeout) if event is not None]

    def wakeup(self) -> None:
        self._events.put(None)

    def _read(self, started: queue.SimpleQueue) -> None:
        stream = self.process.stdout
        first = read_frame(stream)
        started.put(first is not None and first[0].get("ready") == len(self.ranks))
        if first is None:
            return
        while (frame := read_frame(stream)) is not None:
            self._events.put(_Result(frame[0]["from"], frame[1]))
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

    def send(self, rank: int, message: bytes) -> None:
        try:
            write_frame(self.process.stdin, {"to": rank}, message)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the hub died; the reader thread reports it and the lost jobs

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(WORKER_EXIT_GRACE)
        except (OSError, subprocess.TimeoutExpired):
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
class MPIRank:
    """One worker rank and the jobs sent to it, oldest (the running one) first."""

    rank: int
    in_flight: deque[int] = field(default_factory=deque)
    known_programs: set[str] = field(default_factory=set)
    known_archives: set[str] = field(default_factory=set)

    def __repr__(self) -> str:
        return f"<MPIRank {self.rank}>"


class MPIInterface:
    """Run tasks on MPI ranks: spawned (`num_workers` of them) or those of mpiexec.

    Under mpiexec, constructing this on a rank other than 0 serves jobs until the master
    stops, then exits the process.
    """

    def __init__(self, num_workers: int | None = None) -> None:
        self._closed = False
        self._restarts = 0
        self._archives: dict[str, bytes] = {}
        if launched_by_mpiexec():
            self._link: _DirectLink | _HubLink | None = self._join_mpiexec_job()
        else:
            if num_workers is not None and num_workers < 1:
                raise UserError(f"--num_workers must be at least 1, got {num_workers}")
            self._link = _HubLink(num_workers or os.cpu_count() or 1)
        self._ranks = [MPIRank(rank) for rank in self._link.ranks]
        atexit.register(self.cleanup)  # under mpiexec, ranks wait for a stop until then

    def _join_mpiexec_job(self) -> _DirectLink:
        from mpi4py import MPI

        from .mpi_worker import serve

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
        """`-n` spawned workers; under mpiexec, the job's ranks (-n is then ignored)."""
        if getattr(options, "app_path", None):
            raise UserError(
                "the mpi interface runs tasks on its ranks' own Python; drop -c/--app_path "
                "(custom worker apps are for the generic, condor and boinc interfaces)"
            )
        return cls(num_workers=getattr(options, "num_workers", None))

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self._ranks)

    def idle_workers(self) -> list[MPIRank]:
        if self._link is None and not self._closed:
            self._restart()
        return [rank for rank in self._ranks for _ in range(JOBS_PER_RANK - len(rank.in_flight))]

    def execute(self, job: Job, worker: MPIRank) -> None:
        program = job.program
        fresh = program.function_name is None  # a user script: run as its own process
        header: dict[str, Any] = {
            "task": job.task_id,
            "program": program.digest,
            "function": program.function_name,
        }
        if fresh:
            header.update(fresh=True, keep=job.keep_files)
        if program.digest not in worker.known_programs:
            header["script" if fresh else "code"] = program.script if fresh else program.code
            worker.known_programs.add(program.digest)
        archive = b""
        if job.data_zip is not None:
            header["zip"] = job.data_zip.name
            if job.data_zip.name not in worker.known_archives:
                archive = self._archive_bytes(job.data_zip)
                header["zip_size"] = len(archive)
                worker.known_archives.add(job.data_zip.name)
        worker.in_flight.append(job.task_id)
        self._link.send(worker.rank, pack(header, archive + job.input_bytes))

    def wait(self, timeout: float | None) -> list[Completion]:
        link = self._link
        if link is None:
            return []
        completions: list[Completion] = []
        for event in link.receive(timeout):
            if isinstance(event, _Result):
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

    def _completion(self, result: _Result) -> Completion:
        header, payload = unpack(result.message)
        rank = self._ranks[self._link.ranks.index(result.rank)]
        rank.in_flight.remove(header["task"])
        has_output = header.get("has_output", True)
        return Completion(
            header["task"],
            payload if has_output else None,
            exit_status=header.get("exit"),
            lost=not has_output,
            detail=header.get("detail", ""),
        )

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
        self._ranks = [MPIRank(rank.rank) for rank in self._ranks]
        return lost

    def _restart(self) -> None:
        logger.warning("starting %d new MPI worker ranks", len(self._ranks))
        self._restarts += 1
        self._link = _HubLink(len(self._ranks))


# ------------------------------------------------------------------------- the hub


def hub_main(num_workers: int) -> int:
    """Spawn `num_workers` ranks and relay frames: stdin `{"to": rank}`, stdout `{"from"}`."""
    # The pipe to the master is the original stdout; fd 1 then points at stderr so that
    # output from MPI or C code cannot corrupt the frames.
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C
    from mpi4py import MPI

    try:
        comm = MPI.COMM_SELF.Spawn(
            sys.executable, ["-m", "pymw.interfaces.mpi_worker"], maxprocs=num_workers
        )
    except MPI.Exception as error:
        print(f"MPI_Comm_spawn failed: {error.Get_error_string()}", file=sys.stderr)
        return 1
    ranks = RankChannel(comm)
    write_frame(channel_out, {"ready": len(ranks.ranks)})
    inbox: deque[tuple[dict, bytes] | None] = deque()
    arrived = threading.Event()

    def read_master() -> None:
        # A thread blocked in read() holds no GIL; it only wakes the relay loop.
        source = sys.stdin.buffer
        while (frame := read_frame(source)) is not None:
            inbox.append(frame)
            arrived.set()
        inbox.append(None)
        arrived.set()

    threading.Thread(target=read_master, daemon=True).start()
    backoff = Backoff()
    while True:
        busy = bool(inbox)
        while inbox:
            frame = inbox.popleft()
            if frame is None:
                ranks.stop()
                comm.Disconnect()
                return 0
            ranks.send(frame[0]["to"], frame[1])
        for rank, message in ranks.poll():
            write_frame(channel_out, {"from": rank}, message)
            busy = True
        if busy:
            backoff.reset()
        elif arrived.wait(backoff.next_delay()):
            arrived.clear()
            backoff.reset()


if __name__ == "__main__":
    sys.exit(hub_main(int(sys.argv[1])))
