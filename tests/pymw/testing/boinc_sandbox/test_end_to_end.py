"""The real boinc-client runs sandbox jobs end to end (slow: about 30 s a client run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APP

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import ServerState
from pymw.testing.boinc_sandbox.processes import is_alive, wait_until

pytestmark = pytest.mark.slow


def _stage_and_create(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "input.txt"
    source.write_text("hello sandbox\n")
    sandbox.run_tool("stage_file", str(source))
    jobs = (
        "--wu_name job_ok input.txt\n"
        "--wu_name job_exit7 --command_line fail input.txt\n"
        "--wu_name job_big --command_line big input.txt\n"
    )
    sandbox.run_tool(
        "create_work", "--appname", APP, "--max_error_results", "0", "--stdin", stdin=jobs
    )


def test_real_client_runs_success_exit7_and_oversize_in_one_run(running: Sandbox, tmp_path):
    _stage_and_create(running, tmp_path)
    assert running.wait_for("results_ready_to_send", 3, timeout=30)
    client = running.add_client(exit_when_idle=True, fetch_minimal_work=False)
    try:
        assert client.wait_exit(timeout=150), client.log()[-3000:]
        assert running.wait_for("workunits_assimilated", 3, timeout=30), running.job_states()
    finally:
        client.stop()
    log = (tmp_path / "assimilated.log").read_text()
    lines = log.splitlines()
    ok = next(line for line in lines if line.startswith("ARGS ") and "--error" not in line)
    wu_id, output = ok.split()[1:3]
    assert wu_id.isdigit() and "/upload/" in output
    assert "HELLO SANDBOX" in lines
    errors = {line.split()[3]: line.split()[2] for line in lines if "--error" in line}
    assert set(errors) == {"job_exit7", "job_big"}, log
    assert all(int(mask) & 2 for mask in errors.values())  # WU_ERROR_TOO_MANY_ERROR_RESULTS
    with running.project.connect() as database:
        rows = {r["name"]: r for r in database.all("SELECT * FROM result")}
    assert rows["job_exit7_0"]["exit_status"] == 7
    assert "failing on purpose" in rows["job_exit7_0"]["stderr_out"]
    assert rows["job_ok_0"]["outcome"] == 1
    assert "exceeds size limit" in client.log()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pymw.testing.boinc_sandbox", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_starts_and_stops_cleanly(base_dir: Path):
    directory = str(base_dir / "cli_proj")
    try:
        started = _cli("start", "--dir", directory, "--clients", "1")
        assert started.returncode == 0, started.stderr
        status = json.loads(_cli("status", "--dir", directory, "--json").stdout)
        assert status["url"].startswith("http://127.0.0.1:")
        assert status["project_dir"] == directory
        assert len(status["authenticator"]) == 32
        pids = [status["http"]["pid"], *(d["pid"] for d in status["daemons"])]
        pids += [c["pid"] for c in status["clients"]]
        assert len(status["clients"]) == 1 and all(pids), status
        assert all(is_alive(pid) for pid in pids)
    finally:
        stopped = _cli("stop", "--dir", directory)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(is_alive(pid) for pid in pids)
    after = json.loads(_cli("status", "--dir", directory, "--json").stdout)
    assert not after["http"]["pid"] and not any(d["running"] for d in after["daemons"])
    assert not any(c["pid"] for c in after["clients"])


def test_a_client_that_stays_up_reports_only_when_updated(running: Sandbox, tmp_path):
    """Lazy reporting with the real client: its task is done and uploaded, but the
    server hears of it only once the client is told to update (as a volunteer would).
    The client itself reports at once a task due within a day: the deadline is later."""
    source = tmp_path / "input.txt"
    source.write_text("lazy\n")
    running.run_tool("stage_file", str(source))
    running.run_tool(
        "create_work",
        "--appname",
        APP,
        "--wu_name",
        "lazy",
        "--delay_bound",
        "200000",
        "input.txt",
    )
    assert running.wait_for("results_ready_to_send", 1, timeout=30)
    client = running.add_client(exit_when_idle=False)
    try:
        uploaded = running.project.upload_dir
        assert wait_until(lambda: any(uploaded.rglob("lazy_0_*")), 90), client.log()[-3000:]
        assert not running.wait_for("results_reported", 1, timeout=15), client.log()[-3000:]
        with running.project.connect() as database:
            state = database.one("SELECT server_state FROM result WHERE name = 'lazy_0'")[0]
        assert state == ServerState.IN_PROGRESS
        running.update_clients()
        assert running.wait_for("results_reported", 1, timeout=30), client.log()[-3000:]
        assert running.wait_for("workunits_assimilated", 1, timeout=30)
    finally:
        client.stop()
    assert "LAZY" in (tmp_path / "assimilated.log").read_text()
