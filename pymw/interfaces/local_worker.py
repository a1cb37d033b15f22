"""The worker process of the generic interface: `python -m pymw.interfaces.local_worker`.

It talks to its master over its stdin/stdout with length-prefixed frames (see `frames`)
and runs each job one of two ways:
- in-process (persistent mode): the program's code is executed once per worker and its
  function called for each task, so a task costs a pipe round trip, not an interpreter;
- as a fresh process through the worker contract (`<worker> <script> [zip] <in> <out>`),
  exactly what a BOINC client does, so a BOINC app can be debugged on local cores.

Only the standard library and `pyboinc.contract` are imported: this file also runs under
an interpreter other than the master's (`python_loc`).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

from pyboinc import contract

from .in_process import InProcessRunner

_FRAME_HEADER = struct.Struct(">II")
# How much of a failed task process's stderr to send back.
STDERR_TAIL_CHARS = 4000


def encode_frame(header: dict, payload: bytes = b"") -> bytes:
    """One message: two big-endian lengths, a JSON header, raw payload bytes."""
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return _FRAME_HEADER.pack(len(head), len(payload)) + head + payload


def write_frame(stream, header: dict, payload: bytes = b"") -> None:
    stream.write(encode_frame(header, payload))
    stream.flush()


def read_frame(stream) -> tuple[dict, bytes] | None:
    """The next message, or None at end of stream."""
    lengths = stream.read(_FRAME_HEADER.size)
    if len(lengths) < _FRAME_HEADER.size:
        return None
    head_size, payload_size = _FRAME_HEADER.unpack(lengths)
    head = stream.read(head_size)
    payload = stream.read(payload_size) if payload_size else b""
    if len(head) < head_size or len(payload) < payload_size:
        return None
    return json.loads(head), payload


class JobRunner:
    """Runs one job at a time, in-process or as a fresh process (shared with MPI ranks)."""

    def __init__(self) -> None:
        self.in_process = InProcessRunner()
        self.child: subprocess.Popen | None = None

    def run(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        if header.get("fresh"):
            return self.run_fresh(header, payload)
        status, output = self.in_process.run(header, payload)
        return {"exit": status}, output

    def run_fresh(self, header: dict, payload: bytes) -> tuple[dict, bytes]:
        task_dir = header["task_dir"]
        os.makedirs(task_dir, exist_ok=True)
        script = header["script_path"]
        if not os.path.exists(script):
            contract.write_atomically(script, header["script"].encode("utf-8"))
        contract.write_atomically(os.path.join(task_dir, "input"), payload)
        data_zip = header.get("data_zip")
        if data_zip:
            _link_or_copy(data_zip, os.path.join(task_dir, os.path.basename(data_zip)))
        command = contract.worker_command(
            header["worker"], script, "input", "output", header.get("stdlib_zip")
        )
        with open(os.path.join(task_dir, "stderr.txt"), "wb") as stderr:
            self.child = subprocess.Popen(
                command, cwd=task_dir, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
            status = self.child.wait()
            self.child = None
        output_path = os.path.join(task_dir, "output")
        output = None
        if os.path.exists(output_path):
            with open(output_path, "rb") as handle:
                output = handle.read()
        reply = {"exit": status, "has_output": output is not None}
        if output is None:
            with open(os.path.join(task_dir, "stderr.txt"), errors="replace") as handle:
                reply["detail"] = _describe_exit(status, handle.read()[-STDERR_TAIL_CHARS:])
        if not header.get("keep"):
            shutil.rmtree(task_dir, ignore_errors=True)
        return reply, output or b""

    def stop_child(self, *_args) -> None:
        if self.child is not None:
            self.child.kill()
        os._exit(1)


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


def main() -> int:
    # The channel to the master is the original stdout; fd 1 then points at stderr so that
    # a stray print from C code cannot corrupt the frames.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the master handles Ctrl-C
    worker = JobRunner()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, worker.stop_child)
    inbox: queue.SimpleQueue = queue.SimpleQueue()

    def receive() -> None:
        # Reading ahead keeps the master from blocking on a full pipe while a task runs.
        source = sys.stdin.buffer
        while (frame := read_frame(source)) is not None:
            inbox.put(frame)
        inbox.put(None)

    threading.Thread(target=receive, daemon=True).start()
    while (frame := inbox.get()) is not None:
        header, payload = frame
        started = time.perf_counter()
        try:
            reply, output = worker.run(header, payload)
        except Exception as error:  # e.g. the worker app cannot start: fail the task, not us
            reply, output = {"has_output": False, "detail": f"{type(error).__name__}: {error}"}, b""
        reply["task"] = header["task"]
        reply["seconds"] = time.perf_counter() - started
        try:
            write_frame(channel, reply, output)
        except BrokenPipeError:
            # The master is gone (it stopped on an error): so are we, at once. A normal
            # exit would wait on the reader thread, blocked on the master's stdin.
            os._exit(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
