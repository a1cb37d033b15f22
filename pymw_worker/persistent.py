"""The generic interface's worker process: `python -m pymw_worker.persistent`.

    python -m pymw_worker.persistent --work-dir DIR --parent PID [--app EXE --stdlib-zip ZIP]

It reads job and recall records from stdin and writes replies to its stdout, in frames
(`records`), and runs jobs with `TaskRunner` in the folder it was started in; fresh
processes get their task folders under `--work-dir` (shared by the master's workers).
It exits when stdin ends, at once: that is its master stopping it, or dying
(`lifeline`). Run under any Python the master names (`python_loc`), so it imports only
the standard library, `pyboinc.contract` and this package.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import BinaryIO

from . import frames, inbox, lifeline, records
from .runner import TaskRunner


class Channel:
    """Replies to the master, written whole by one thread at a time (the loop, and the
    receiving thread answering recalls)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, reply: records.Reply) -> None:
        with self._lock:
            try:
                self._stream.writelines(reply.pieces())
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                lifeline.abandon(lambda: None)  # the master is gone: so are we


def receive(source: BinaryIO, jobs: inbox.Inbox, channel: Channel, runner: TaskRunner) -> None:
    """Feed the inbox from the master; when the master's pipe ends, stop everything.

    Reading ahead also keeps the master from blocking on a full pipe while a task runs.
    """
    while (frame := frames.read(source)) is not None:
        jobs.deliver(records.decode(frame), channel.send)
    lifeline.abandon(runner.kill_child, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pymw_worker.persistent")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--app")
    parser.add_argument("--stdlib-zip")
    options = parser.parse_args(argv)
    # The channel to the master is the original stdout; fd 1 then points at stderr so
    # that a stray print from C code cannot corrupt the frames.
    channel = Channel(os.fdopen(os.dup(1), "wb"))
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C
    runner = TaskRunner(options.work_dir, options.app, options.stdlib_zip)
    lifeline.exit_with_parent(options.parent, runner.kill_child)
    jobs = inbox.Inbox()
    threading.Thread(
        target=receive, args=(sys.stdin.buffer, jobs, channel, runner), daemon=True
    ).start()
    return inbox.serve(jobs, runner, channel.send)


if __name__ == "__main__":
    sys.exit(main())
