"""The generic interface's worker process: `python -m pymw_worker.persistent`.

    python -m pymw_worker.persistent --work-dir DIR --parent PID [--app EXE --stdlib-zip ZIP]

It reads job and recall records from stdin and writes replies to its stdout, in frames
(`records`), and runs jobs with `TaskRunner` in the folder it was started in: between
jobs the loop reads the pipe itself, and while one runs a watching thread does (`inbox`),
so a recall or the pipe's end is heard within `inbox.WATCH_INTERVAL`; fresh
processes get their task folders under `--work-dir` (shared by the master's workers).
It exits when stdin ends, at once: that is its master stopping it, or dying
(`lifeline`). Run under any Python the master names (`python_loc`), so it imports only
the standard library, `pyboinc.contract` and this package.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import threading

from . import frames, inbox, lifeline, records
from .runner import TaskRunner


class Channel:
    """Replies to the master, written whole by one thread at a time (the loop, and the
    watching thread answering recalls)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._lock = threading.Lock()

    def send(self, reply: records.Reply) -> None:
        with self._lock:
            try:
                frames.write_all(self._fd, reply.pieces())
            except OSError:
                lifeline.abandon(lambda: None)  # the master is gone: so are we


class Pipe:
    """The master's pipe, read by whichever thread the inbox lets (`Inbox` says which):
    all that arrived is delivered at once; at its end, the worker stops everything."""

    def __init__(self, fd: int, runner: TaskRunner, send: inbox.Send) -> None:
        os.set_blocking(fd, False)  # a poll takes what arrived, and only that
        self._fd = fd
        self._reader = frames.FrameReader(fd)
        self._runner = runner
        self._send = send
        self.jobs = inbox.Inbox(self.poll, self.wait)

    def poll(self) -> bool:
        """Deliver the records that arrived; True if any did."""
        delivered = False
        while True:
            try:
                received = self._reader.read()
            except BlockingIOError:
                return delivered
            if received is None:
                lifeline.abandon(self._runner.kill_child, 0)
            for frame in received:
                self.jobs.deliver(records.decode(frame), self._send)
                delivered = True

    def wait(self) -> None:
        select.select([self._fd], [], [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymw_worker.persistent")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--app")
    parser.add_argument("--stdlib-zip")
    options = parser.parse_args(argv)
    # The channel to the master is the original stdout; fd 1 then points at stderr so
    # that a stray print from C code cannot corrupt the frames.
    channel = Channel(os.dup(1))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C
    runner = TaskRunner(options.work_dir, options.app, options.stdlib_zip)
    lifeline.exit_with_parent(options.parent, runner.kill_child)
    jobs = Pipe(sys.stdin.fileno(), runner, channel.send).jobs
    threading.Thread(target=jobs.watch, daemon=True).start()
    return inbox.serve(jobs, runner, channel.send)


if __name__ == "__main__":
    sys.exit(main())
