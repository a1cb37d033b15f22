"""PyMW batches on a sandbox BOINC project run by the real Debian boinc-client (slow)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from pymw.interfaces.boinc import BOINCInterface
from pymw.interfaces.boinc.constants import CHECKPOINT_FILE
from pymw.testing.boinc_sandbox.constants import FileDeleteState, Outcome
from pymw.testing.boinc_sandbox.control import daemon_states
from pymw.testing.boinc_sandbox.processes import is_alive, wait_until

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


def test_monte_pi_runs_in_the_frozen_worker_under_the_real_client(
    sandbox, volunteer, pyboinc_dist, tmp_path
):
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


def test_monte_pi_with_default_workers_uses_the_hosts_python(sandbox, volunteer, tmp_path):
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


def test_a_killed_master_rerun_creates_no_duplicates_and_gets_all_results(
    sandbox, volunteer, tmp_path
):
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


CUBES_MASTER = textwrap.dedent(
    """
    import sys
    from pymw import pymw
    from pymw.interfaces.boinc import BOINCInterface

    def cube(x):
        return x ** 3

    interface = BOINCInterface(sys.argv[1], task_path=sys.argv[2])
    interface.set_boinc_args(target_nresults=1, min_quorum=1)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [master.submit_task(cube, input_data=(i,)) for i in range(2)]
        print(sorted(master.get_result(task)[1] for task in tasks), flush=True)
    """
)


def workunits(sandbox) -> list[sqlite3.Row]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM workunit ORDER BY id").fetchall()


def batch_of(task_dir: Path) -> int:
    return json.loads((task_dir / CHECKPOINT_FILE).read_text())["batch"]


def stop_daemon(sandbox, program: str) -> None:
    """End one daemon this test's sandbox started, as a crash or an admin would."""
    (pid,) = [pid for daemon, pid in daemon_states(sandbox.project) if daemon.program == program]
    os.kill(pid, signal.SIGTERM)
    assert wait_until(lambda: not is_alive(pid), 10)


def test_a_rerun_survives_the_file_deleter_deleting_the_first_batchs_script(
    sandbox, volunteer, tmp_path
):
    """The losing order of issue 10: the second batch is created while the first one's
    script is still staged, then file_deleter handles the first batch, then the second
    batch's workunits go out to a client that must download that script."""
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "setup").cleanup()
    program = tmp_path / "cubes.py"
    program.write_text(CUBES_MASTER)
    stop_daemon(sandbox, "file_deleter")
    first_client = start_client(sandbox)
    first = subprocess.run(
        [sys.executable, str(program), str(sandbox.project_dir), str(tmp_path / "first")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "[0, 1]"
    first_client.stop()  # the next client has nothing cached
    second_dir = tmp_path / "second"
    second = subprocess.Popen(
        [sys.executable, str(program), str(sandbox.project_dir), str(second_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_until(lambda: len(workunits(sandbox)) == 4, 60), "batch 2 not created"
        first_batch = [wu for wu in workunits(sandbox) if wu["batch"] != batch_of(second_dir)]
        sandbox.run_tool("start", "--cron")  # file_deleter is back
        assert wait_until(
            lambda: all(
                wu["file_delete_state"] == FileDeleteState.DONE
                for wu in workunits(sandbox)
                if wu["id"] in {row["id"] for row in first_batch}
            ),
            60,
        ), "file_deleter did not handle the first batch"
        start_client(sandbox)
        out, err = second.communicate(timeout=300)
    finally:
        second.kill()
    assert second.returncode == 0, err
    assert out.strip() == "[0, 1]"
    assert all(wu["error_mask"] == 0 for wu in workunits(sandbox))
    # Nothing refers to the script any more: PyMW deleted it after the last batch.
    assert not list(sandbox.project.download_dir.rglob("pymw_script_*"))


def test_a_master_stopped_by_a_database_outage_resumes_once_it_is_back(
    sandbox, volunteer, tmp_path
):
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "setup").cleanup()  # setup, DB up
    with sandbox.database_down():
        down = run_monte_pi_on(sandbox, tmp_path, "-t", "1000")
    assert down.returncode == 2, down.stderr
    assert len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert "bin/create_work" in down.stderr and "error opening database" in down.stderr
    assert "database server is running" in down.stderr
    intended = json.loads((tmp_path / "tasks" / CHECKPOINT_FILE).read_text())["intended"]
    # The dispatcher may hand over the first task before the second is submitted: the
    # failed wave held one or both. Either way nothing was created.
    assert 1 <= len(intended) <= 2 and workunits(sandbox) == []
    start_client(sandbox)
    rerun = run_monte_pi_on(sandbox, tmp_path, "-t", "1000")
    assert rerun.returncode == 0, rerun.stderr
    assert 2.0 < pi_from(rerun.stdout) < 4.0
    names = [wu["name"] for wu in workunits(sandbox)]
    assert len(names) == 2 and set(intended) <= set(names)  # the intended names, no duplicates


# A task that crashes on the host whose data directory holds BAD_HOST_MARKER (the slot is
# <data dir>/slots/<n>): that host's result is a client error, and BOINC resends it.
BAD_HOST_MARKER = "pymw_bad_host"
LATER_TASK_MASTER = textwrap.dedent(
    f"""
    import os, sys, time
    from pathlib import Path
    from pymw import pymw
    from pymw.interfaces.boinc import BOINCInterface

    def cube(x):
        if os.path.exists("../../{BAD_HOST_MARKER}"):
            os._exit(3)
        return x ** 3

    interface = BOINCInterface(sys.argv[1], task_path=sys.argv[2])
    interface.set_boinc_args(target_nresults=1, min_quorum=1)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        print("first", master.get_result(master.submit_task(cube, input_data=(1,)))[1], flush=True)
        while not Path(sys.argv[3]).exists():
            time.sleep(0.2)
        print("later", master.get_result(master.submit_task(cube, input_data=(2,)))[1], flush=True)
    """
)


def results_of(sandbox) -> list[sqlite3.Row]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM result ORDER BY id").fetchall()


def test_a_later_workunit_and_its_resend_find_the_script_file_deleter_spared(
    sandbox, volunteer, tmp_path
):
    """The batch's first workunit is assimilated and its files handled by file_deleter;
    then the same batch sends a new workunit, whose first result fails on a bad host, and
    whose resend goes to a host that has nothing cached: both need the shared script."""
    program, go = tmp_path / "later.py", tmp_path / "go"
    program.write_text(LATER_TASK_MASTER)
    master = subprocess.Popen(
        [sys.executable, str(program), str(sandbox.project_dir), str(tmp_path / "tasks"), go],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        good = start_client(sandbox)
        assert master.stdout.readline().split() == ["first", "1"], master.stderr.read()
        good.stop()
        assert wait_until(
            lambda: (
                [wu["file_delete_state"] for wu in workunits(sandbox)] == [FileDeleteState.DONE]
            ),
            60,
        ), "file_deleter did not handle the first workunit"
        bad = start_client(sandbox)
        (bad.data_dir / BAD_HOST_MARKER).touch()
        go.touch()
        assert wait_until(
            lambda: any(r["outcome"] == Outcome.CLIENT_ERROR for r in results_of(sandbox)), 120
        ), "the bad host did not report its failure"
        bad.stop()
        start_client(sandbox)
        out, err = master.communicate(timeout=300)
    finally:
        master.kill()
    assert master.returncode == 0, err
    assert out.split() == ["later", "8"]
    later_results = [
        r for r in results_of(sandbox) if r["workunitid"] == workunits(sandbox)[1]["id"]
    ]
    assert [r["outcome"] for r in later_results] == [Outcome.CLIENT_ERROR, Outcome.SUCCESS]


PRIME_FINDER = ROOT / "examples" / "prime_finder.py"


def primes_below(bound: int) -> int:
    sieve = bytearray([1]) * bound
    sieve[:2] = b"\0\0"
    for n in range(2, int(bound**0.5) + 1):
        if sieve[n]:
            sieve[n * n :: n] = bytes(len(range(n * n, bound, n)))
    return sum(sieve)


def test_masters_running_at_once_share_one_project(sandbox, volunteer, tmp_path):
    """Two masters of one program from different directories and a master of another
    program, all at once: each has its own batch and gets its own answer, and the script
    the first two share stays until the last of them is done with it, then goes."""
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "admin").cleanup()  # set up once
    start_client(sandbox)
    programs = {
        "pi_a": (MONTE_PI, "-n", "2", "-t", "200000"),
        "pi_b": (MONTE_PI, "-n", "2", "-t", "200000"),
        "primes": (PRIME_FINDER, "-m", "20000", "--tasks", "3"),
    }
    runs = {}
    for name, (program, *args) in programs.items():
        (tmp_path / name).mkdir()
        runs[name] = subprocess.Popen(
            [sys.executable, str(program), "-i", "boinc", "-p", str(sandbox.project_dir), *args],
            cwd=tmp_path / name,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    outputs = {name: run.communicate(timeout=400) for name, run in runs.items()}
    for name, run in runs.items():
        assert run.returncode == 0, f"{name}: {outputs[name][1]}"
    assert pi_from(outputs["pi_a"][0]) == pi_from(outputs["pi_b"][0])  # the same tasks
    assert abs(pi_from(outputs["pi_a"][0]) - 3.14159) < 0.05
    assert f"{primes_below(20000)} primes below 20000" in outputs["primes"][0]
    with sqlite3.connect(sandbox.project.db_path) as db:
        batches = db.execute("SELECT COUNT(DISTINCT batch), SUM(error_mask != 0) FROM workunit")
        assert tuple(batches.fetchone()) == (3, 0)
    references = sandbox.project_dir / "pymw_files"
    assert [p.name for p in references.iterdir() if p.is_dir()] == []
    assert list(sandbox.project.download_dir.glob("*/pymw_script_*")) == []
