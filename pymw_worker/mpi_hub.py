"""The hub a spawning master starts: `python -m pymw_worker.mpi_hub N --parent PID`.

MPI without fault tolerance ends every process of a job when one rank dies, so a master
that spawns ranks keeps MPI out of its own process: this hub spawns N ranks and relays
between them and the master's pipes (see `pymw.interfaces.mpi`)::

    master ──stdin: {"to": rank} + record──▶ hub ──Isend──▶ rank
    master ◀─stdout: the rank's reply frame── hub ◀─Improbe── rank

The first frame out is `{"ready": N}`; `{"stop": true}` stops the ranks and the hub.
If the master's pipe ends without a stop, the master is gone: the hub kills its process
group (mpiexec, its proxies and the ranks) at once, whatever the ranks were doing.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections import deque

from . import frames, lifeline
from .inbox import Backoff
from .mpi_ranks import RankChannel


def kill_process_group() -> None:
    """SIGKILL this hub's process group: itself, mpiexec, its proxies and the ranks."""
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymw_worker.mpi_hub")
    parser.add_argument("ranks", type=int)
    parser.add_argument("--parent", type=int, required=True)
    options = parser.parse_args(argv)
    # The pipe to the master is the original stdout; fd 1 then points at stderr so that
    # output from MPI or C code cannot corrupt the frames.
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C
    lifeline.exit_with_parent(options.parent, kill_process_group)
    from mpi4py import MPI

    try:
        comm = MPI.COMM_SELF.Spawn(
            sys.executable, ["-m", "pymw_worker.mpi_ranks"], maxprocs=options.ranks
        )
    except MPI.Exception as error:
        print(f"MPI_Comm_spawn failed: {error.Get_error_string()}", file=sys.stderr)
        return 1
    ranks = RankChannel(comm)
    frames.write(channel_out, {"ready": len(ranks.ranks)})
    inbox: deque[frames.Frame] = deque()
    arrived = threading.Event()
    threading.Thread(target=_read_master, args=(inbox, arrived), daemon=True).start()
    backoff = Backoff()
    while True:
        busy = bool(inbox)
        while inbox:
            frame = inbox.popleft()
            if frame.header.get("stop"):
                ranks.stop()
                comm.Disconnect()
                return 0
            ranks.send(frame.header["to"], frame.payload or b"")
        for message in ranks.poll():
            channel_out.write(message)
            busy = True
        if busy:
            channel_out.flush()
            backoff.reset()
        elif arrived.wait(backoff.next_delay()):
            arrived.clear()
            backoff.reset()


def _read_master(inbox: deque, arrived: threading.Event) -> None:
    """Frames from the master, for the relay loop; its pipe's end ends everything.

    A thread blocked in read() holds no GIL; it only wakes the relay loop.
    """
    source = sys.stdin.buffer
    while (frame := frames.read(source)) is not None:
        inbox.append(frame)
        arrived.set()
        if frame.header.get("stop"):
            return
    lifeline.abandon(kill_process_group)


if __name__ == "__main__":
    sys.exit(main())
