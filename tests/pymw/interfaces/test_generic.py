"""The generic interface's process handling: Ctrl-C, a killed master, cleanup, fresh
processes, the output size cap, and the worker options of ProcessPoolExecutor."""

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tasks_for_tests as t

from pymw import pymw
from pymw.errors import BrokenMasterError, UserError, WorkerLostError
from pymw.interfaces.generic import GenericInterface

HELPERS = os.path.join(os.path.dirname(__file__), "..", "..", "helpers")
# Master scripts run in a subprocess import the PyMW of this checkout, and their workers
# the test helpers.
CHECKOUT = dict(
    os.environ,
    PYTHONPATH=os.pathsep.join(
        [os.path.join(os.path.dirname(__file__), "..", "..", ".."), HELPERS]
    ),
)

MASTER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import tasks_for_tests as t
    from pymw import pymw
    from pymw.interfaces.generic import GenericInterface

    interface = GenericInterface(num_workers=2, fresh_process=sys.argv[2] == "fresh")
    master = pymw.PyMW_Master(interface, show_progress=False)
    tasks = [master.submit_task(t.slow_square, input_data=(i, 60)) for i in range(4)]
    time.sleep(1.5)
    status = master.get_status()["interface"]
    print(json.dumps({"pids": status["worker_pids"], "dir": str(interface.work_dir)}), flush=True)
    master.get_result(tasks[0])
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: its parent (the master) is gone or reaping it.
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[1].split()[0] != "Z"


@pytest.mark.parametrize("count", [0, -2])
def test_no_workers_is_a_user_error_not_all_cores(count):
    with pytest.raises(UserError, match=f"--num_workers must be at least 1, got {count}"):
        GenericInterface(num_workers=count)


@pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX here")
@pytest.mark.parametrize("mode", ["persistent", "fresh"])
def test_ctrl_c_stops_workers_and_removes_temporary_files(tmp_path, mode):
    script = tmp_path / "master.py"
    script.write_text(MASTER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), HELPERS, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=CHECKOUT,
    )
    info = json.loads(process.stdout.readline())
    assert len(info["pids"]) == 2 and os.path.isdir(info["dir"])
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr
    deadline = time.time() + 10
    while any(_alive(pid) for pid in info["pids"]) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in info["pids"])
    assert not os.path.exists(info["dir"])
    assert _processes_mentioning(info["dir"]) == [], "fresh task processes outlived the master"


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line names `text`, or that run in a folder under it."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    mentioned = text.encode() in handle.read()
                mentioned = mentioned or os.readlink(f"/proc/{entry}/cwd").startswith(text)
                if mentioned and _alive(int(entry)):
                    found.append(int(entry))
            except OSError:
                continue
    return found


@pytest.mark.slow
def test_monte_pi_with_the_frozen_worker_on_local_cores(pyboinc_dist, tmp_path):
    """Every task runs in pymw_1.03_<platform> through the worker contract, as under BOINC."""
    monte_pi = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "monte_pi.py")
    run = subprocess.run(
        [sys.executable, monte_pi, "-c", str(pyboinc_dist), "-a", "1.00_python311.zip"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    estimate = float(run.stdout.split("Estimate of pi:")[1].split()[0])
    assert abs(estimate - 3.14159265) < 0.01


# ------------------------------------------------------ a killed master (issue 11)

KILLED_MASTER_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    import tasks_for_tests as t
    from pymw import pymw
    from pymw.interfaces.generic import GenericInterface

    interface = GenericInterface(num_workers=2, fresh_process=sys.argv[2] == "fresh")
    master = pymw.PyMW_Master(interface, show_progress=False)
    tasks = [master.submit_task(t.slow_square, input_data=(i, 600)) for i in range(4)]
    while master.get_status()["workers"]["active"] < 2:
        time.sleep(0.05)
    time.sleep(0.5)  # fresh mode: the task processes start
    status = master.get_status()["interface"]
    print(json.dumps({"pids": status["worker_pids"], "dir": str(interface.work_dir)}), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX here")
@pytest.mark.parametrize("mode", ["persistent", "fresh"])
def test_workers_exit_when_their_master_is_killed_during_a_long_task(tmp_path, mode):
    script = tmp_path / "master.py"
    script.write_text(KILLED_MASTER_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), HELPERS, mode],
        stdout=subprocess.PIPE,
        text=True,
        env=CHECKOUT,
    )
    info = json.loads(process.stdout.readline())
    assert _processes_mentioning(info["dir"]), "no worker runs in the master's folder"
    process.kill()
    process.wait()
    deadline = time.time() + 10
    while _processes_mentioning(info["dir"]) and time.time() < deadline:
        time.sleep(0.1)
    left = _processes_mentioning(info["dir"])
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert left == [], "workers (or their task processes) outlived a killed master"


# ------------------------------------------------ the result size cap (issue 11)

BIG_OUTPUT_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys
    sys.path.insert(0, sys.argv[1])
    import tasks_for_tests as t
    from pymw.interfaces.generic import GenericInterface
    from pymw.submission import start_master

    interface = GenericInterface(num_workers=1, fresh_process=sys.argv[2] == "fresh")
    submitter = start_master(interface, None, max_result_bytes=1 << 20, show_progress=False)
    warm = submitter.submit(t.square, (3,), with_future=True, collect=False)
    assert warm.future.result() == 9
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    big = submitter.submit(t.big_bytes, (int(sys.argv[3]),), with_future=True, collect=False)
    error = big.future.exception()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"error": type(error).__name__, "message": str(error), "grown_kib": grown}))
    submitter.master.terminate()
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX")
@pytest.mark.parametrize("mode", ["persistent", "fresh"])
def test_an_output_over_the_size_cap_never_enters_the_masters_memory(tmp_path, mode):
    script = tmp_path / "master.py"
    script.write_text(BIG_OUTPUT_SCRIPT)
    output_bytes = 48 << 20
    run = subprocess.run(
        [sys.executable, str(script), HELPERS, mode, str(output_bytes)],
        capture_output=True,
        text=True,
        timeout=120,
        env=CHECKOUT,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["error"] == "MalformedResultError"
    assert "over" in report["message"]
    assert report["grown_kib"] * 1024 < output_bytes // 4, "the master read the output"


def test_a_worker_imports_no_part_of_the_master():
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=False) as master:
        task = master.submit_task(t.loaded_pymw_modules)
        assert master.get_result(task)[1] == []


# ------------------------------------- initializer and max_tasks_per_child (issue 11)


def test_the_initializer_runs_in_every_worker_before_its_tasks():
    with pymw.Executor(
        interface=GenericInterface(num_workers=2),
        initializer=t.set_environment,
        initargs=("PYMW_TEST_STATE", "initialized"),
    ) as pool:
        futures = [pool.submit(t.get_environment, "PYMW_TEST_STATE") for _ in range(6)]
        assert [future.result(timeout=30) for future in futures] == ["initialized"] * 6


def test_a_failing_initializer_breaks_the_executor(caplog):
    with pymw.Executor(
        interface=GenericInterface(num_workers=2), initializer=t.fail_to_initialize
    ) as pool:
        future = pool.submit(t.square, 2)
        with pytest.raises(concurrent.futures.BrokenExecutor, match="no database here"):
            future.result(timeout=30)
        with pytest.raises(BrokenMasterError):
            pool.submit(t.square, 3)
    # Logged where ProcessPoolExecutor logs it, with the worker's traceback.
    [record] = [r for r in caplog.records if r.name == "concurrent.futures"]
    assert record.levelname == "CRITICAL"
    assert "no database here" in caplog.text and "fail_to_initialize" in caplog.text


def test_a_worker_is_replaced_after_max_tasks_per_child():
    with pymw.Executor(interface=GenericInterface(num_workers=1), max_tasks_per_child=2) as pool:
        pids = [pool.submit(t.worker_pid).result(timeout=30) for _ in range(5)]
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]


def test_an_initializer_with_fresh_processes_is_a_user_error():
    with pytest.raises(UserError, match="persistent workers"):
        pymw.Executor(
            interface=GenericInterface(num_workers=1, fresh_process=True),
            initializer=t.set_environment,
            initargs=("A", "B"),
        )


def test_terminate_fails_the_running_tasks_at_once_and_the_dispatcher_stops():
    pool = pymw.Executor(interface=GenericInterface(num_workers=2))
    futures = [pool.submit(t.slow_square, i, 30) for i in range(4)]
    deadline = time.monotonic() + 30
    while not all(future.running() for future in futures):  # the workers hold them all
        assert time.monotonic() < deadline, "the workers never took the four tasks"
        time.sleep(0.01)
    pool._master.terminate()
    for future in futures:
        with pytest.raises(WorkerLostError):
            future.result(timeout=10)
    pool._master._thread.join(10)
    assert not pool._master._thread.is_alive()


def test_a_worker_that_stops_reading_its_jobs_does_not_stall_the_others():
    # The dispatcher's writes never block: a worker that reads no more of its jobs pipe
    # (stopped here; stuck in C code, or itself blocked writing its replies, elsewhere)
    # must not keep the other worker's jobs from going out and coming back.
    interface = GenericInterface(num_workers=2)
    with pymw.Executor(interface=interface) as pool:
        assert list(pool.map(abs, [-1, -2, -3, -4])) == [1, 2, 3, 4]
        stopped = interface.get_status()["worker_pids"][0]
        os.kill(stopped, signal.SIGSTOP)
        try:
            # Inputs far bigger than a pipe holds: the stopped worker gets one of them.
            futures = [pool.submit(len, b"x" * (8 << 20)) for _ in range(4)]
            done, _ = concurrent.futures.wait(
                futures, timeout=60, return_when=concurrent.futures.FIRST_COMPLETED
            )
            assert done, "no task finished while one worker read nothing"
        finally:
            os.kill(stopped, signal.SIGCONT)
        assert [future.result(timeout=60) for future in futures] == [8 << 20] * 4
