"""Remote job submission (`-i boinc --url`) against the sandbox's web RPCs."""

from __future__ import annotations

import http.server
import math
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from one_line_errors import assert_one_line_error

from pymw.interfaces.boinc import BOINCInterface
from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import FileDeleteState
from pymw.testing.boinc_sandbox.layout import read_daemons
from pymw.testing.boinc_sandbox.processes import end_process, read_pid, wait_until
from pymw.testing.boinc_sandbox.volunteer import Volunteer
from pymw.testing.boinc_sandbox.webuser import separate_web_user

ROOT = Path(__file__).resolve().parents[4]
MONTE_PI = ROOT / "examples" / "monte_pi.py"
ZIP = "1.00_python311.zip"


def run_monte_pi(*args: str, cwd: Path, timeout: float = 120, env=None):
    return subprocess.run(
        [sys.executable, str(MONTE_PI), "-i", "boinc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def estimate(run: subprocess.CompletedProcess) -> float:
    assert run.returncode == 0, run.stdout + run.stderr
    return float(re.search(r"Estimate of pi: ([0-9.]+)", run.stdout).group(1))


@pytest.fixture
def pymw_project(sandbox, tmp_path):
    """The sandbox with the pymw app installed by the admin's setup (default workers),
    and download/ made writable by the web server, as docs/submit-from-laptop.md says."""
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "admin").cleanup()
    sandbox.grant_web_download_write()
    return sandbox


@pytest.mark.skipif(not separate_web_user(), reason="only root runs the web side as its own user")
def test_uploads_into_a_download_dir_the_web_server_cannot_write_are_one_line(sandbox, tmp_path):
    """make_project leaves download/ unwritable by the web server, which runs job_file.php."""
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "admin").cleanup()
    run = run_monte_pi("--url", sandbox.url, "--auth", sandbox.authenticator, cwd=tmp_path)
    assert_one_line_error(run, "admin must let the web server's user write")
    assert "could not move" in run.stderr and "download/" in run.stderr


def test_wrong_authenticator_is_a_one_line_error(pymw_project, tmp_path):
    run = run_monte_pi("--url", pymw_project.url, "--auth", "0" * 32, cwd=tmp_path)
    assert_one_line_error(run, "refused the request")


def test_unknown_app_is_a_one_line_error(sandbox, tmp_path):
    run = run_monte_pi("--url", sandbox.url, "--auth", sandbox.authenticator, cwd=tmp_path)
    assert_one_line_error(run, "pymw")


def test_unreachable_url_is_a_one_line_error(tmp_path):
    run = run_monte_pi("--url", "http://127.0.0.1:9/", "--auth", "k", cwd=tmp_path)
    assert_one_line_error(run, "cannot reach")


def test_server_error_is_a_one_line_error(tmp_path):
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_error(500, "database is down")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        run = run_monte_pi("--url", url, "--auth", "k", cwd=tmp_path, timeout=180)
    finally:
        server.shutdown()
    assert run.returncode == 2, run.stderr
    assert "500" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_authenticator_files_readable_by_others_are_refused(tmp_path):
    auth_file = tmp_path / "auth"
    auth_file.write_text("secret\n")
    auth_file.chmod(0o644)
    run = run_monte_pi("--url", "http://127.0.0.1:9/", "--auth-file", str(auth_file), cwd=tmp_path)
    assert_one_line_error(run, "chmod 600")


def test_missing_authenticator_names_the_ways_to_give_one(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYMW_BOINC_AUTHENTICATOR"}
    run = run_monte_pi("--url", "http://127.0.0.1:9/", cwd=tmp_path, env=env)
    assert_one_line_error(run, "--auth-file PATH")


def batches(sandbox) -> list[tuple[int, int]]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        return list(db.execute("SELECT id, state FROM batch"))


@pytest.mark.slow
def test_monte_pi_over_http_with_the_frozen_worker(sandbox, pyboinc_dist, tmp_path):
    BOINCInterface(
        sandbox.project_dir,
        custom_app_dir=pyboinc_dist,
        custom_args=[ZIP],
        task_path=tmp_path / "admin",
    ).cleanup()
    sandbox.grant_web_download_write()
    auth_file = tmp_path / "auth"
    auth_file.write_text(sandbox.authenticator)
    auth_file.chmod(0o600)
    ready_client(sandbox)
    with Volunteer(sandbox):
        run = run_monte_pi(
            *("--url", sandbox.url, "--auth-file", str(auth_file), "-a", ZIP, "-n", "2"),
            cwd=tmp_path,
            timeout=400,
        )
    assert abs(estimate(run) - math.pi) < 0.05
    assert [state for _, state in batches(sandbox)] == [4]  # retired once collected
    with sqlite3.connect(sandbox.project.db_path) as db:
        stderr = [row[0] or "" for row in db.execute("SELECT stderr_out FROM result")]
    assert any("called boinc_finish(0)" in text for text in stderr)


REMOTE_MASTER = textwrap.dedent(
    """
    import logging, sys, time
    from pymw import pymw
    from pymw.interfaces.boinc.remote import BOINCRemoteInterface

    logging.basicConfig(format="%(message)s")
    logging.getLogger("pymw").setLevel(logging.INFO)  # what -v asks for

    def cube(x):
        return x ** 3

    interface = BOINCRemoteInterface(sys.argv[1], sys.argv[2], task_path=sys.argv[3])
    master = pymw.PyMW_Master(interface, show_progress=False)
    tasks = [master.submit_task(cube, input_data=(i,)) for i in range(4)]
    if sys.argv[4] == "die":
        while len(interface.record.submitted) < 4:
            time.sleep(0.1)
        print("SUBMITTED", *interface.record.batches, flush=True)
        time.sleep(600)
    print(sorted(master.get_result(task)[1] for task in tasks))
    master.cleanup()
    """
)


@pytest.mark.slow
def test_an_interrupted_master_reattaches_to_its_batch(pymw_project, tmp_path):
    program = tmp_path / "master.py"
    program.write_text(REMOTE_MASTER)
    command = [
        sys.executable,
        str(program),
        pymw_project.url,
        pymw_project.authenticator,
        str(tmp_path / "tasks"),
    ]
    first = subprocess.Popen([*command, "die"], stdout=subprocess.PIPE, text=True)
    try:
        line = first.stdout.readline().split()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert line[0] == "SUBMITTED"
    ready_client(pymw_project)
    with Volunteer(pymw_project):
        rerun = subprocess.run([*command, "finish"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == str([0, 1, 8, 27])
    reattached = f"reattaching to the jobs an earlier run submitted to {pymw_project.url}"
    assert [line for line in rerun.stderr.splitlines() if "reattaching" in line] == [
        f"{reattached}: their results are awaited, not submitted again"
    ]
    assert batches(pymw_project) == [(int(line[1]), 4)]
    with sqlite3.connect(pymw_project.project.db_path) as db:
        assert db.execute("SELECT count(*) FROM workunit").fetchone()[0] == 4


def hold_file_deleter(sandbox: Sandbox, held: bool) -> None:
    """Stop (held) or restart BOINC's file_deleter alone, through config.xml's
    <disabled> as an operator would, to decide the race it runs with the next batch."""
    config = sandbox.project_dir / "config.xml"
    tree = ET.parse(config)
    for daemon in tree.getroot().iter("daemon"):
        if daemon.findtext("cmd", "").startswith("file_deleter"):
            disabled = daemon.find("disabled")
            if disabled is None:
                disabled = ET.SubElement(daemon, "disabled")
            disabled.text = "1" if held else "0"
    tree.write(config)
    if not held:
        sandbox.run_tool("start")
        return
    for spec in read_daemons(sandbox.project):
        pid = read_pid(sandbox.project.pid_dir / spec.pid_file)
        if spec.cmd.startswith("file_deleter") and pid:
            end_process(pid)


def ready_client(sandbox: Sandbox):
    """A new client that stays up, once boinccmd can talk to it."""
    client = sandbox.add_client(exit_when_idle=False, fetch_minimal_work=False)
    assert wait_until(lambda: (client.data_dir / "gui_rpc_auth.cfg").exists(), 30)
    return client


def workunits(sandbox: Sandbox) -> list[tuple[int, str, int, int]]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        return list(db.execute("SELECT batch, name, file_delete_state, error_mask FROM workunit"))


@pytest.mark.slow
def test_back_to_back_runs_of_one_program_survive_the_file_deleter(pymw_project, tmp_path):
    """The second run starts at once and submits while the first batch's input files
    are still there; BOINC's file_deleter then deletes them (it counts no references)
    before any client gets the second batch. Its jobs name the same script, `jf_<md5>`,
    and, with the same seed, the same input data: both must still be there."""
    command = ("--url", pymw_project.url, "--auth", pymw_project.authenticator, "-n", "1")
    for run_dir in ("first", "second"):
        (tmp_path / run_dir).mkdir()
    hold_file_deleter(pymw_project, held=True)
    client = ready_client(pymw_project)
    with Volunteer(pymw_project):  # the clients report and ask for work within seconds
        first = run_monte_pi(*command, cwd=tmp_path / "first", timeout=300)
    client.stop()
    assert abs(estimate(first) - math.pi) < 0.05
    (first_batch,) = {batch for batch, *_ in workunits(pymw_project)}
    second = subprocess.Popen(
        [sys.executable, str(MONTE_PI), "-i", "boinc", *command],
        cwd=tmp_path / "second",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(workunits(pymw_project)) == 2, 60, interval=0.2)
        hold_file_deleter(pymw_project, held=False)
        assert wait_until(
            lambda: all(
                state == FileDeleteState.DONE
                for batch, _, state, _ in workunits(pymw_project)
                if batch == first_batch
            ),
            60,
        )
        ready_client(pymw_project)
        with Volunteer(pymw_project):
            out, err = second.communicate(timeout=300)
    finally:
        second.kill()
    second_run = subprocess.CompletedProcess(second.args, second.returncode, out, err)
    assert abs(estimate(second_run) - math.pi) < 0.05
    assert [mask for *_, mask in workunits(pymw_project)] == [0, 0]
    (first_name,) = [name for batch, name, *_ in workunits(pymw_project) if batch == first_batch]
    # the file_deleter did delete the first batch's own input
    assert not pymw_project.project.download_path(f"{first_name}_in", create=False).exists()
