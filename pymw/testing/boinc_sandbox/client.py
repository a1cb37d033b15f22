"""A harness for the real BOINC client (`/usr/bin/boinc`, Debian's boinc-client 7.20.5).

This is no stand-in: it runs the volunteer's actual client in a private data directory
with its own GUI RPC port, attached to a sandbox project. The command line is the one
seen to work on this kind of machine:
`--no_gpus --skip_cpu_benchmarks --no_info_fetch --gui_rpc_port P --attach_project URL
AUTH --sched_retry_delay_min 1 --sched_retry_delay_max 3`, `--fetch_minimal_work`
unless several jobs are wanted in one scheduler request, and
`--exit_when_idle` for tests (the client exits once its results are acknowledged and
the project has no more work) and without it for a sandbox a user watches (the client
stays, and `<next_rpc_delay>` in config.xml makes it ask for new work every few
seconds). `global_prefs_override.xml` stops it suspending work when the CPU is busy.
Teardown kills the app processes first: on SIGTERM the client waits up to 60 s for them.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from .processes import free_port, is_alive, kill_tree_first, read_pid, reap, spawn, wait_until

BOINC = "/usr/bin/boinc"
BOINCCMD = "/usr/bin/boinccmd"
GLOBAL_PREFS = (
    "<global_preferences>\n    <suspend_cpu_usage>0</suspend_cpu_usage>\n</global_preferences>\n"
)
PID_FILE = "client.pid"
LOG_FILE = "client.log"
#: Written by the client once up: the password boinccmd needs.
GUI_RPC_AUTH_FILE = "gui_rpc_auth.cfg"
SETTINGS_FILE = "sandbox_client.json"
#: How long the client may take to shut down after its apps are gone.
STOP_GRACE_SECONDS = 15.0


@dataclass
class BoincClient:
    """One real BOINC client attached to one project."""

    data_dir: Path
    url: str
    authenticator: str
    exit_when_idle: bool = True
    #: With it the client asks for 1 s of work, so a real scheduler sends one job per
    #: request; without it, it asks to fill all CPUs and can get several jobs at once.
    fetch_minimal_work: bool = True
    gui_rpc_port: int = 0

    @classmethod
    def from_dir(cls, data_dir: Path) -> BoincClient:
        """The client a previous `start` left in data_dir (for stop/status)."""
        settings = json.loads((data_dir / SETTINGS_FILE).read_text())
        return cls(**{**settings, "data_dir": data_dir})

    def argv(self) -> list[str]:
        argv = [
            BOINC,
            "--dir",
            str(self.data_dir),
            "--no_gpus",
            "--skip_cpu_benchmarks",
            "--no_info_fetch",
            "--gui_rpc_port",
            str(self.gui_rpc_port),
            "--attach_project",
            self.url,
            self.authenticator,
            "--sched_retry_delay_min",
            "1",
            "--sched_retry_delay_max",
            "3",
        ]
        if self.fetch_minimal_work:
            argv.append("--fetch_minimal_work")
        if self.exit_when_idle:
            argv.append("--exit_when_idle")
        return argv

    @property
    def pid(self) -> int | None:
        return read_pid(self.data_dir / PID_FILE)

    @property
    def running(self) -> bool:
        pid = self.pid
        if pid is not None:
            reap(pid)
        return self.pid is not None

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.gui_rpc_port = self.gui_rpc_port or free_port()
        (self.data_dir / "global_prefs_override.xml").write_text(GLOBAL_PREFS)
        settings = {k: v for k, v in asdict(self).items() if k != "data_dir"}
        (self.data_dir / SETTINGS_FILE).write_text(json.dumps(settings))
        spawn(self.argv(), self.data_dir / LOG_FILE, self.data_dir / PID_FILE, self.data_dir)

    def wait_exit(self, timeout: float) -> bool:
        """Wait for a client started with exit_when_idle to exit on its own."""
        return wait_until(lambda: not self.running, timeout, interval=0.5)

    def boinccmd(self, *args: str) -> str:
        password = (self.data_dir / GUI_RPC_AUTH_FILE).read_text().strip()
        run = subprocess.run(
            [BOINCCMD, "--host", f"localhost:{self.gui_rpc_port}", "--passwd", password, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return run.stdout + run.stderr

    def update(self) -> str:
        """Make the client contact the scheduler now (it may wait minutes otherwise).

        A client still starting has no GUI RPC password yet: it contacts the project
        on its own once up, so there is nothing to ask of it.
        """
        if not (self.data_dir / GUI_RPC_AUTH_FILE).exists():
            return ""
        return self.boinccmd("--project", self.url, "update")

    def log(self) -> str:
        path = self.data_dir / LOG_FILE
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Kill the client's apps, then the client; no process is left behind."""
        pid = self.pid
        if pid is not None:
            kill_tree_first(pid, STOP_GRACE_SECONDS)
        (self.data_dir / PID_FILE).unlink(missing_ok=True)
        wait_until(lambda: pid is None or not is_alive(pid), 5)
