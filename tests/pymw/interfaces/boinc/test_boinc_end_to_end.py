"""PyMW batches on a sandbox BOINC project run by the real Debian boinc-client (slow)."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[4]
MONTE_PI = ROOT / "examples" / "monte_pi.py"
ZIP = "1.00_python311.zip"


def start_client(sandbox):
    """A client that stays up and fetches freely (the master creates work as it goes)."""
    return sandbox.add_client(exit_when_idle=False, fetch_minimal_work=False)


def run_monte_pi_on(sandbox, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """examples/monte_pi.py on the sandbox project with two tasks."""
    command = [sys.executable, str(MONTE_PI), "-i", "boinc", "-p", str(sandbox.project_dir)]
    return subprocess.run(
        [*command, "-n", "2", *args], cwd=cwd, capture_output=True, text=True, timeout=400
    )


def pi_from(output: str) -> float:
    return float(re.search(r"Estimate of pi: ([0-9.]+)", output).group(1))


def result_stderr(sandbox) -> list[str]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        return [row[0] or "" for row in db.execute("SELECT stderr_out FROM result")]


def watch_fraction_done(client, seen: list[float], stop: threading.Event) -> None:
    """Poll `boinccmd --get_tasks`: the fraction done the client read from the app."""
    while not stop.is_set():
        try:
            text = client.boinccmd("--get_tasks")
        except Exception:  # the client may be between states; try again
            text = ""
        seen += [float(v) for v in re.findall(r"fraction done: ([0-9.]+)", text)]
        stop.wait(0.5)


def test_monte_pi_runs_in_the_frozen_worker_under_the_real_client(sandbox, pyboinc_dist, tmp_path):
    client = start_client(sandbox)
    seen: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_fraction_done, args=(client, seen, stop))
    watcher.start()
    try:
        run = run_monte_pi_on(
            sandbox, tmp_path, "-c", str(pyboinc_dist), "-a", ZIP, "-t", "30000000"
        )
    finally:
        stop.set()
        watcher.join()
    assert run.returncode == 0, run.stderr
    assert abs(pi_from(run.stdout) - 3.14159) < 0.05
    stderr_reports = result_stderr(sandbox)
    assert any("called boinc_finish(0)" in text for text in stderr_reports), stderr_reports
    assert any(0 < value < 1 for value in seen), f"client never saw progress: {seen[:20]}"
    access_log = next(sandbox.project_dir.glob("log_*/httpd.log")).read_text()
    assert re.search(r"GET \S*pymw_1\.03_x86_64-pc-linux-gnu\.gz HTTP", access_log), (
        "the client did not fetch the gzip-compressed worker"
    )
    log = next((sandbox.project_dir).glob("log_*/script_assimilator*pymw*.log")).read_text()
    assert log.count("running") >= 2 and "pymw_assimilator" in log


def test_monte_pi_with_default_workers_uses_the_hosts_python(sandbox, tmp_path):
    start_client(sandbox)
    run = run_monte_pi_on(sandbox, tmp_path, "-t", "200000")
    assert run.returncode == 0, run.stderr
    assert abs(pi_from(run.stdout) - 3.14159) < 0.05


RESTARTABLE_MASTER = textwrap.dedent(
    """
    import sys, time
    from pymw import pymw
    from pymw.interfaces.boinc import BOINCInterface

    def cube(x):
        return x ** 3

    interface = BOINCInterface(sys.argv[1], task_path=sys.argv[2])
    master = pymw.PyMW_Master(interface, show_progress=False)
    first = [master.submit_task(cube, input_data=(i,)) for i in range(3)]
    if sys.argv[3] == "die":
        while len(interface.checkpoint.created) < 3:
            time.sleep(0.1)
        print("HALF", flush=True)
        time.sleep(600)
    rest = [master.submit_task(cube, input_data=(i,)) for i in range(3, 6)]
    print(sorted(master.get_result(task)[1] for task in first + rest))
    master.cleanup()
    """
)


def test_a_killed_master_rerun_creates_no_duplicates_and_gets_all_results(sandbox, tmp_path):
    program = tmp_path / "master.py"
    program.write_text(RESTARTABLE_MASTER)
    tasks = tmp_path / "tasks"
    command = [sys.executable, str(program), str(sandbox.project_dir), str(tasks)]
    first = subprocess.Popen([*command, "die"], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "HALF"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    start_client(sandbox)
    rerun = subprocess.run([*command, "finish"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == str(sorted(i**3 for i in range(6)))
    with sqlite3.connect(sandbox.project.db_path) as db:
        names = [row[0] for row in db.execute("SELECT name FROM workunit")]
    assert len(names) == len(set(names)) == 6
    assert not (tasks / "checkpoint.json").exists()
