"""MPI ranks: the loop every worker rank runs, and the master's end of their channel.

A rank receives job and recall records as byte messages from the master rank, runs the
jobs with `TaskRunner` (task functions in-process, user scripts as fresh processes on the
worker contract) and sends replies back as bytes: frames, never pickles, since the master
decodes outputs with the safe codec only. An idle rank polls for messages itself; while a
job runs, a watching thread does, so a recall reaches a rank busy with a long task. Both
threads call MPI, one at a time (a lock), which MPI_THREAD_SERIALIZED allows; mpi4py asks
for more by default.

No shared filesystem is assumed: a program's code and a task's data archive travel in the
job the first time a rank needs them, and each rank works in its own temporary folder.

Run as `python -m pymw_worker.mpi_ranks` by the hub a spawning master starts (`mpi_hub`);
under `mpiexec` the user's own script calls `serve` on every rank but 0. `mpi4py.MPI` is
imported only where MPI is used: importing it initialises MPI, which the spawning master's
own process must never do.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
from typing import Any

from . import frames, inbox, records
from .runner import TaskRunner

# Message tags between the master rank and a worker rank.
TAG_JOB = 1
TAG_RESULT = 2
TAG_STOP = 3
MASTER_RANK = 0


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


class RankChannel:
    """The master's end of a communicator with worker ranks, driven by one thread (the
    hub's loop, or under mpiexec the master's dispatcher).

    Jobs go out with `Isend`, so a rank busy with a long task never blocks the master;
    `poll` completes sends and returns the replies that arrived, without blocking.
    """

    def __init__(self, comm: Any) -> None:
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self._sending: list[tuple[Any, bytes]] = []  # requests and the buffers they read
        first = 0 if comm.Is_inter() else 1
        size = comm.Get_remote_size() if comm.Is_inter() else comm.Get_size() - 1
        self.ranks = list(range(first, first + size))

    def send(self, rank: int, message: bytes, *, tag: int = TAG_JOB) -> None:
        request = self.comm.Isend([message, self._MPI.BYTE], rank, tag)
        self._sending.append((request, message))

    def poll(self) -> list[bytes]:
        """The reply messages that arrived (each a whole frame)."""
        if self._sending:
            self._sending = [item for item in self._sending if not item[0].Test()]
        replies = []
        while received := receive_bytes(self.comm, self._MPI.ANY_SOURCE, TAG_RESULT):
            replies.append(bytes(received[2]))
        return replies

    def stop(self) -> None:
        """Tell every rank to stop and wait until each was told."""
        for rank in self.ranks:
            self.send(rank, b"", tag=TAG_STOP)
        self._MPI.Request.Waitall([request for request, _ in self._sending])
        self._sending.clear()


def serve(comm: Any, master: int = MASTER_RANK) -> None:
    """Run jobs from `master` until it sends TAG_STOP; then remove this rank's folder."""
    from mpi4py import MPI

    work_dir = tempfile.mkdtemp(prefix=f"pymw-rank{comm.Get_rank()}-")
    os.chdir(work_dir)  # data archives unpack here, as on a generic worker
    mpi_lock = threading.RLock()  # delivering a recall sends its replies while receiving

    def send(reply: records.Reply) -> None:
        message = records.to_bytes(reply)
        with mpi_lock:
            comm.Send([message, MPI.BYTE], master, TAG_RESULT)

    def poll() -> bool:
        """Deliver the messages that arrived; True if any did."""
        arrived = False
        with mpi_lock:
            while not jobs.closed and (received := receive_bytes(comm, master, MPI.ANY_TAG)):
                arrived = True
                _source, tag, data = received
                if tag == TAG_STOP:
                    jobs.close()
                else:
                    jobs.deliver(records.decode(frames.parse(data)), send)
        return arrived

    jobs = inbox.Inbox(poll)
    watcher = threading.Thread(target=jobs.watch, daemon=True)
    watcher.start()
    try:
        inbox.serve(jobs, TaskRunner(work_dir), send)
        # After a failed initializer, until the master says stop: the failed setup job
        # leaves the inbox busy, so the watcher goes on polling.
        watcher.join()
    finally:
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(work_dir, ignore_errors=True)


def main() -> int:
    """Entry point of a rank spawned by the hub."""
    from mpi4py import MPI

    parent = MPI.Comm.Get_parent()
    if parent == MPI.COMM_NULL:
        print("pymw_worker.mpi_ranks: started by PyMW's MPI hub, not by hand", file=sys.stderr)
        return 2
    serve(parent)
    parent.Disconnect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
