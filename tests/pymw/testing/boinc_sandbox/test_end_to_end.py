"""The real boinc-client runs sandbox jobs end to end (slow: about 30 s a client run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import APP

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.processes import is_alive

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


def test_cli_starts_and_stops_cleanly(tmp_path: Path):
    directory = str(tmp_path / "cli_proj")
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
