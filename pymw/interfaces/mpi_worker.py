"""The worker side of the MPI interface: the loop every worker rank runs.

A rank receives jobs as byte messages from the master rank, runs them with the generic
interface's runner (task functions in-process through `InProcessRunner`, user scripts as a
fresh process through the worker contract) and sends the output envelope back as bytes.
Both directions are raw bytes framed like the generic interface's pipes (a JSON header and
a payload), never pickles: the master decodes outputs with the safe codec only.

No shared filesystem is assumed: a program's code and a task's data archive travel in the
message the first time a rank needs them, and each rank works in its own temporary folder.

Run as `python -m pymw.interfaces.mpi_worker` by a spawning master (`MPI.Comm.Get_parent`);
under `mpiexec` the user's own script calls `serve` on every rank but 0. `mpi4py.MPI` is
imported only where MPI is used: importing it initialises MPI, which the spawning master's
own process must never do (see `mpi.py`), though it shares this wire format.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from typing import Any

from .local_worker import JobRunner, encode_frame, read_frame

# Message tags between the master rank and a worker rank.
TAG_JOB = 1
TAG_RESULT = 2
TAG_STOP = 3
MASTER_RANK = 0
# Idle polling sleeps from BACKOFF_MIN up to BACKOFF_MAX seconds, doubling. Blocking MPI
# receives spin a core at 100% in MPICH, which starves busy ranks sharing that core; this
# is also what mpi4py.futures does (MPI4PY_FUTURES_BACKOFF, 1 ms).
BACKOFF_MIN = 1e-6
BACKOFF_MAX = 1e-3


class Backoff:
    """Sleep a little longer each time nothing happened; start over when something did."""

    def __init__(self) -> None:
        self.delay = 0.0

    def reset(self) -> None:
        self.delay = 0.0

    def next_delay(self) -> float:
        """0 (only yield) first, then BACKOFF_MIN doubling up to BACKOFF_MAX."""
        delay = self.delay
        self.delay = min(BACKOFF_MAX, max(BACKOFF_MIN, delay * 2))
        return delay


pack = encode_frame  # one message's bytes: the generic interface's frame, in memory


def unpack(message: bytes | bytearray) -> tuple[dict, bytes]:
    frame = read_frame(io.BytesIO(message))
    if frame is None:
        raise ValueError("truncated PyMW MPI message")
    return frame


def receive_bytes(comm: Any, source: int, tag: int) -> tuple[int, int, bytearray] | None:
    """A waiting message as (source, tag, bytes), or None; never blocks."""
    from mpi4py import MPI

    status = MPI.Status()
    message = comm.Improbe(source, tag, status)
    if message is None:
        return None
    data = bytearray(status.Get_count(MPI.BYTE))
    message.Recv([data, MPI.BYTE])
    return status.Get_source(), status.Get_tag(), data


class RankWorker:
    """Runs the jobs of one rank in its own working folder."""

    def __init__(self, work_dir: str) -> None:
        self.work_dir = work_dir
        self.runner = JobRunner()
        self.scripts_dir = os.path.join(work_dir, "scripts")
        os.makedirs(self.scripts_dir, exist_ok=True)

    def run(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        zip_size = header.pop("zip_size", 0)
        if zip_size:
            zip_path = os.path.join(self.work_dir, header["zip"])
            with open(zip_path, "wb") as handle:
                handle.write(payload[:zip_size])
            payload = payload[zip_size:]
        if header.get("zip"):
            header["data_zip"] = os.path.join(self.work_dir, header.pop("zip"))
        if header.get("fresh"):
            digest = header["program"]
            header["script_path"] = os.path.join(self.scripts_dir, f"{digest}.py")
            header["task_dir"] = os.path.join(self.work_dir, "tasks", str(header["task"]))
            header["worker"] = [sys.executable]
        reply, output = self.runner.run(header, payload)
        reply["task"] = header["task"]
        return reply, output


def serve(comm: Any, master: int = MASTER_RANK) -> None:
    """Run jobs from `master` until it sends TAG_STOP; then remove this rank's folder."""
    from mpi4py import MPI

    work_dir = tempfile.mkdtemp(prefix=f"pymw-rank{comm.Get_rank()}-")
    os.chdir(work_dir)  # data archives unpack here, as on a generic worker
    worker = RankWorker(work_dir)
    backoff = Backoff()
    try:
        while True:
            received = receive_bytes(comm, master, MPI.ANY_TAG)
            if received is None:
                time.sleep(backoff.next_delay())
                continue
            backoff.reset()
            _source, tag, data = received
            if tag == TAG_STOP:
                return
            reply, output = worker.run(*unpack(data))
            comm.Send([pack(reply, output), MPI.BYTE], master, TAG_RESULT)
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(work_dir, ignore_errors=True)


def main() -> int:
    """Entry point of a spawned worker rank."""
    from mpi4py import MPI

    parent = MPI.Comm.Get_parent()
    if parent == MPI.COMM_NULL:
        print("pymw.interfaces.mpi_worker: run by MPIInterface, not by hand", file=sys.stderr)
        return 2
    serve(parent)
    parent.Disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
