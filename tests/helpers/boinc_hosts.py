"""Volunteer hosts and project settings for batches at scale on a sandbox project.

Shared by the BOINC scale tests and benchmarks/bench_boinc.py: both attach several real
clients that stay up and ask for many jobs per scheduler request, and tune the project
as its administrator would (config.xml, which the sandbox's scheduler reads on every
request, like the real one).
"""

from __future__ import annotations

import re
import sqlite3

from boinc_scale_tasks import LIAR_MARKER

from pymw.testing.boinc_sandbox import BoincClient, Sandbox
from pymw.testing.boinc_sandbox.constants import CLIENTS_DIR
from pymw.testing.boinc_sandbox.processes import wait_until


def add_host(sandbox: Sandbox, name: str, lies: bool = False) -> BoincClient:
    """A real client that stays up and fetches many jobs per request; a liar has the
    marker in its data directory, where its tasks find it (boinc_scale_tasks)."""
    data_dir = sandbox.project_dir / CLIENTS_DIR / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if lies:
        (data_dir / LIAR_MARKER).write_text("this host returns wrong results\n")
    return sandbox.add_client(exit_when_idle=False, fetch_minimal_work=False, name=name)


def host_id(client: BoincClient) -> int:
    """The host id the project gave this client (kept in its client_state.xml)."""
    state = (client.data_dir / "client_state.xml").read_text(errors="replace")
    return int(re.search(r"<hostid>(\d+)</hostid>", state).group(1))


def wait_attached(sandbox: Sandbox, hosts: int, timeout: float) -> bool:
    """Wait until the project knows `hosts` hosts (each made its first request)."""

    def attached() -> bool:
        with sqlite3.connect(sandbox.project.db_path, timeout=60) as db:
            return db.execute("SELECT COUNT(*) FROM host").fetchone()[0] >= hosts

    return wait_until(attached, timeout, interval=0.5)
