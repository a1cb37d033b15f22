"""The sandbox as a whole: a project directory, its HTTP side, daemons and clients.

This is the Python API behind `pymw-boinc-sandbox` and the test fixtures. A `Sandbox`
wraps one project directory; `start()` runs its HTTP side (what Apache does for a real
project), `bin/start` (the daemons) and any number of real BOINC clients; `stop()` ends
them all. Everything runs as background processes with pid files in the project, so a
later command (or another process) can stop them.

Started as root, the HTTP side runs as its own user (`webuser.WEB_USER`), so the
project directory must be reachable by that user (not below a 0700 directory such as
/root or pytest's tmp_path). Clients report lazily, as with a real server: a harness
that plays the volunteer calls `update_clients()` (or runs a `Volunteer`) to make them
report and fetch now, which real volunteers' clients do on their own schedule.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .client import BoincClient
from .constants import CLIENTS_DIR, HTTPD_NAME, PLATFORM, AssimilateState, ServerState
from .control import daemon_states
from .layout import Project, add_app_to_project_xml, add_daemon, make_project
from .processes import end_process, free_port, read_pid, spawn, wait_until
from .webuser import (
    WebUserError,
    check_web_reachable,
    grant_download_write,
    separate_web_user,
)

#: Seconds to wait for the HTTP side to answer after it was started.
HTTP_START_TIMEOUT = 20.0
#: Longest a daemon takes to notice the database is down (its idle sleep, and more).
DAEMONS_NOTICE_SECONDS = 15.0


class SandboxError(Exception):
    """Something the user can fix (the message says how)."""


@dataclass
class Sandbox:
    project: Project

    @classmethod
    def open(
        cls, directory: Path, create: bool = True, report_immediately: bool = False
    ) -> Sandbox:
        """The sandbox in directory; a new project is made there if there is none.

        `report_immediately` (new projects only) makes the scheduler send every job with
        <report_immediately/>, which no real server does: only for tests that say so.
        """
        directory = Path(directory).resolve()
        if (directory / "config.xml").exists():
            return cls(Project.load(directory))
        if not create:
            raise SandboxError(f"{directory} is not a sandbox project (no config.xml)")
        if directory.exists() and any(directory.iterdir()):
            raise SandboxError(f"{directory} is not empty and not a sandbox project")
        try:
            project = make_project(
                directory, port=free_port(), report_immediately=report_immediately
            )
        except WebUserError as error:
            raise SandboxError(str(error)) from error
        return cls(project)

    # What a user or test needs to talk to the project.
    @property
    def url(self) -> str:
        return self.project.master_url

    @property
    def project_dir(self) -> Path:
        return self.project.root

    @property
    def authenticator(self) -> str:
        with self.project.connect() as database:
            return database.submitter_authenticator()

    # Running it.
    def run_tool(self, name: str, *args: str, stdin: str | None = None, check: bool = True):
        """Run bin/<name> like an operator would; returns the CompletedProcess."""
        run = subprocess.run(
            [str(self.project.bin_dir / name), *args],
            cwd=self.project.root,
            input=stdin,
            capture_output=True,
            text=True,
        )
        if check and run.returncode:
            raise SandboxError(f"bin/{name} failed: {run.stdout}{run.stderr}".strip())
        return run

    def _http_pid(self) -> int | None:
        return read_pid(self.project.httpd_pid_file)

    def _http_answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as page:
                return b"boinc_scheduler" in page.read()
        except OSError:
            return False

    def start_http(self) -> None:
        if self._http_pid():
            return
        if self._http_answers():
            raise SandboxError(f"something else already serves {self.url}; stop it first")
        try:
            check_web_reachable(self.project)
        except WebUserError as error:
            raise SandboxError(str(error)) from error
        spawn(
            [
                sys.executable,
                "-m",
                "pymw.testing.boinc_sandbox.http_server",
                str(self.project.root),
                *(["--as-web-user"] if separate_web_user() else []),
            ],
            log=self.project.log_dir / f"{HTTPD_NAME}.log",
            pid_file=self.project.httpd_pid_file,
            cwd=self.project.root,
            env=_env_with_package(),
        )
        wait_until(lambda: self._http_answers() or not self._http_pid(), HTTP_START_TIMEOUT)
        if not self._http_answers():
            raise SandboxError(
                f"the HTTP side did not start on port {self.project.port} (in use?);"
                f" see {self.project.log_dir / (HTTPD_NAME + '.log')}"
            )

    def client_dirs(self) -> list[Path]:
        top = self.project.root / CLIENTS_DIR
        return sorted(p for p in top.iterdir() if p.is_dir()) if top.exists() else []

    def add_client(
        self, exit_when_idle: bool, fetch_minimal_work: bool = True, name: str | None = None
    ) -> BoincClient:
        """Start one more real client, attached with the submitter's account."""
        name = name or f"client{len(self.client_dirs())}"
        client = BoincClient(
            data_dir=self.project.root / CLIENTS_DIR / name,
            url=self.url,
            authenticator=self.authenticator,
            exit_when_idle=exit_when_idle,
            fetch_minimal_work=fetch_minimal_work,
        )
        client.start()
        return client

    def start(self, clients: int = 0, exit_when_idle: bool = False) -> list[BoincClient]:
        """HTTP side, daemons, then `clients` real clients (idempotent for the first two)."""
        self.start_http()
        self.run_tool("start")
        started = []
        for i in range(clients):
            directory = self.project.root / CLIENTS_DIR / f"client{i}"
            if directory.exists() and BoincClient.from_dir(directory).running:
                continue
            # A client that stays up must keep fetching: --fetch_minimal_work gets one job.
            started.append(
                self.add_client(
                    exit_when_idle, fetch_minimal_work=exit_when_idle, name=f"client{i}"
                )
            )
        return started

    def clients(self) -> list[BoincClient]:
        """The clients this sandbox started that are still running."""
        clients = [BoincClient.from_dir(d) for d in self.client_dirs()]
        return [c for c in clients if c.running]

    def update_clients(self) -> None:
        """Make every running client contact the scheduler now (boinccmd update).

        The scheduler asks for no early report and no next RPC, so a client that stays
        up reports finished tasks and fetches new ones only when it gets round to it
        (10 min to 24 h when idle); a real volunteer's client does that on its own
        schedule. A test harness calls this, or runs a `Volunteer`, instead of waiting.
        """
        for client in self.clients():
            client.update()

    @contextmanager
    def database_down(self) -> Iterator[None]:
        """The database server is stopped inside the block, as MySQL can be.

        Every process then fails to connect like BOINC's: bin/create_work prints
        "create_work: error opening database: ..." and exits 1, the scheduler answers
        "Server can't open database", the daemons exit ("DB connection lost"). On
        leaving, the database is up again and, if the daemons had been running, what
        cron's `bin/start --cron` does within 5 minutes is done at once.
        """
        daemons_were_up = any(pid for _, pid in daemon_states(self.project))
        self.project.db_up_file.unlink()
        try:
            yield
        finally:
            if daemons_were_up:  # each notices within its sleep interval
                wait_until(
                    lambda: not any(pid for _, pid in daemon_states(self.project)),
                    DAEMONS_NOTICE_SECONDS,
                )
            self.project.db_up_file.touch()
            if daemons_were_up:
                self.run_tool("start", "--cron")

    def grant_web_download_write(self) -> None:
        """Let the web user write download/, as an admin does for job_file.php uploads
        by running `webuser.GRANT_DOWNLOAD_COMMAND` in the project directory."""
        grant_download_write(self.project)

    def stop(self) -> None:
        """End clients (apps first), daemons and the HTTP side."""
        for directory in self.client_dirs():
            BoincClient.from_dir(directory).stop()
        self.run_tool("stop", check=False)
        pid = self._http_pid()
        if pid:
            end_process(pid)
        self.project.httpd_pid_file.unlink(missing_ok=True)

    # Apps and jobs.
    def add_app(
        self,
        app: str,
        files: list[Path],
        version: str = "1.0",
        version_xml: str | None = None,
        daemons: tuple[str, ...] = (),
        templates: tuple[str, str] | None = None,
    ) -> None:
        """Install an app version the way an operator does, then xadd/update_versions.

        `daemons` are extra config.xml daemon commands (validator, assimilator).
        `templates` are the texts of templates/<app>_in and templates/<app>_out, which
        create_work and remote submission use by default.
        """
        add_app_to_project_xml(self.project, app)
        if templates is not None:
            for suffix, text in zip(("in", "out"), templates, strict=True):
                (self.project.root / "templates" / f"{app}_{suffix}").write_text(text)
        directory = self.project.app_dir / app / version / PLATFORM
        directory.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy2(f, directory / f.name)
        if version_xml is not None:
            (directory / "version.xml").write_text(version_xml)
        for cmd in daemons:
            name = f"{cmd.split()[0]}_{app}"
            add_daemon(self.project, cmd, output=f"{name}.log", pid_file=f"{name}.pid")
        self.run_tool("xadd")
        self.run_tool("update_versions", "--noconfirm")

    def job_states(self) -> dict[str, int]:
        """Counts of results and workunits by state, for status and for waiting."""
        with self.project.connect() as database:
            results = database.one(
                "SELECT COUNT(*) AS total,"
                " SUM(server_state = ? AND in_feeder_cache = 1) AS ready,"
                " SUM(server_state = ?) AS in_progress,"
                " SUM(server_state = ? AND received_time > 0) AS reported FROM result",
                ServerState.UNSENT,
                ServerState.IN_PROGRESS,
                ServerState.OVER,
            )
            wus = database.one(
                "SELECT COUNT(*) AS total, SUM(assimilate_state = ?) AS assimilated,"
                " SUM(error_mask != 0) AS errors FROM workunit",
                AssimilateState.DONE,
            )
        return {
            "workunits": wus["total"],
            "workunits_assimilated": wus["assimilated"] or 0,
            "workunits_in_error": wus["errors"] or 0,
            "results": results["total"],
            "results_ready_to_send": results["ready"] or 0,
            "results_in_progress": results["in_progress"] or 0,
            "results_reported": results["reported"] or 0,
        }

    def wait_for(self, key: str, count: int, timeout: float) -> bool:
        """Wait until job_states()[key] >= count (e.g. "results_ready_to_send")."""
        return wait_until(lambda: self.job_states()[key] >= count, timeout, interval=0.5)

    def status(self) -> dict:
        return {
            "url": self.url,
            "project_dir": str(self.project_dir),
            "authenticator": self.authenticator,
            "http": {"pid": self._http_pid()},
            "daemons": [
                {"cmd": d.cmd, "pid": pid, "running": pid is not None}
                for d, pid in daemon_states(self.project)
            ],
            "clients": [
                {"dir": str(d), "pid": BoincClient.from_dir(d).pid} for d in self.client_dirs()
            ],
            "jobs": self.job_states(),
        }


def _env_with_package() -> dict[str, str]:
    """The environment with this package importable (a source checkout need not be
    installed)."""
    root = str(Path(__file__).resolve().parents[3])
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{path}" if path else root}
