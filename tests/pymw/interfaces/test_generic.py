"""The generic interface's process handling: Ctrl-C, cleanup, fresh processes."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

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


@pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX here")
@pytest.mark.parametrize("mode", ["persistent", "fresh"])
def test_ctrl_c_stops_workers_and_removes_temporary_files(tmp_path, mode):
    script = tmp_path / "master.py"
    script.write_text(MASTER_SCRIPT)
    helpers = os.path.join(os.path.dirname(__file__), "..", "..", "helpers")
    process = subprocess.Popen(
        [sys.executable, str(script), helpers, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
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
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if text.encode() in handle.read() and _alive(int(entry)):
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
