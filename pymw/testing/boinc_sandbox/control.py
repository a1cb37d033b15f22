"""`bin/start`, `bin/stop` and `bin/status`: running the project's daemons.

Stands in for BOINC's `tools/start` (installed as start, stop and status). Daemons are
the <daemon>s of config.xml whose <host> is this host or empty, started from bin/ (the
working directory real daemons expect), each with a pid file in pid_<host>/ and its
output in log_<host>/. The `stop_daemons` file is the stop switch: daemons check it
each pass and exit; bin/stop creates it, then ends what is left; bin/start removes it
(and `stop_sched`). `start --cron` starts daemons that are not running, unless the
project is stopped.
"""

from __future__ import annotations

import shlex
import sys

from .constants import STOP_DAEMONS_FILE, STOP_SCHED_FILE
from .layout import DaemonSpec, Project, read_daemons
from .processes import end_process, read_pid, spawn, wait_until

#: How long bin/stop lets daemons see the stop switch before it signals them.
STOP_WAIT_SECONDS = 5.0


def _our_daemons(project: Project) -> list[DaemonSpec]:
    return [d for d in read_daemons(project) if d.host in ("", project.host) and not d.disabled]


def start_main(project: Project, argv: list[str]) -> int:
    cron = False
    for arg in argv:
        if arg == "--cron":
            cron = True
        elif arg not in ("-v", "--verbose", "-q", "--quiet"):
            print(f"start: unknown option {arg}", file=sys.stderr)
            return 1
    stop_file = project.root / STOP_DAEMONS_FILE
    if cron and stop_file.exists():
        return 0
    stop_file.unlink(missing_ok=True)
    (project.root / STOP_SCHED_FILE).unlink(missing_ok=True)
    for daemon in _our_daemons(project):
        pid_file = project.pid_dir / daemon.pid_file
        if read_pid(pid_file):
            continue
        argv_daemon = shlex.split(daemon.cmd)
        program = project.bin_dir / argv_daemon[0]
        if not program.exists():
            print(f"start: {program} not found", file=sys.stderr)
            return 1
        pid = spawn(
            [str(program), *argv_daemon[1:]],
            log=project.log_dir / daemon.output,
            pid_file=pid_file,
            cwd=project.bin_dir,
        )
        print(f"Starting daemon: {daemon.cmd} (pid {pid})")
    return 0


def stop_main(project: Project, argv: list[str]) -> int:
    if argv:
        print(f"stop: unknown option {argv[0]}", file=sys.stderr)
        return 1
    (project.root / STOP_DAEMONS_FILE).touch()
    pid_files = [project.pid_dir / d.pid_file for d in read_daemons(project)]
    wait_until(lambda: not any(read_pid(p) for p in pid_files), STOP_WAIT_SECONDS)
    for pid_file in pid_files:
        pid = read_pid(pid_file)
        if pid:
            end_process(pid)
        pid_file.unlink(missing_ok=True)
    print("Stopped daemons")
    return 0


def daemon_states(project: Project) -> list[tuple[DaemonSpec, int | None]]:
    """Each daemon of config.xml for this host with its pid, or None if not running."""
    return [(d, read_pid(project.pid_dir / d.pid_file)) for d in _our_daemons(project)]


def status_main(project: Project, argv: list[str]) -> int:
    if argv:
        print(f"status: unknown option {argv[0]}", file=sys.stderr)
        return 1
    enabled = not (project.root / STOP_DAEMONS_FILE).exists()
    print(f"BOINC is {'ENABLED' if enabled else 'DISABLED'}\n")
    print("DAEMON  pid     status       commandline")
    for n, (daemon, pid) in enumerate(daemon_states(project), 1):
        state = "running" if pid else "not running"
        print(f"{n:<7} {pid or '':<7} {state:<12} {daemon.cmd}")
    return 0
