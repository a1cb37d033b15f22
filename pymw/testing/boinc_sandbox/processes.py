"""Background processes: pid files, liveness, and ending them with what they started.

Shared by bin/start and bin/stop, the HTTP side and the client harness, which all
leave processes running after the command that started them returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_alive(pid: int) -> bool:
    """True if pid is a process that is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def read_pid(pid_file: Path) -> int | None:
    """The live process a pid file names, if any."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if is_alive(pid) else None


def spawn(argv: list[str], log: Path, pid_file: Path, cwd: Path, **kwargs) -> int:
    """Start a detached process (own session) writing to log; record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def descendants(pid: int) -> list[int]:
    """All processes below pid, children first found by scanning /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def reap(pid: int) -> None:
    """Collect pid if it is our child (no zombie left behind)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def end_process(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` s; the process's session goes with it."""
    if not is_alive(pid):
        reap(pid)
        return
    _signal(pid, signal.SIGTERM)
    if not wait_until(lambda: (reap(pid), not is_alive(pid))[1], grace):
        _signal(pid, signal.SIGKILL)
        wait_until(lambda: (reap(pid), not is_alive(pid))[1], 5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def kill_tree_first(pid: int, grace: float) -> None:
    """Kill everything below pid with SIGKILL, then end pid itself.

    For the BOINC client: SIGTERM makes it wait up to 60 s for its apps, so the apps
    go first.
    """
    for child in descendants(pid):
        _signal(child, signal.SIGKILL)
    end_process(pid, grace)
