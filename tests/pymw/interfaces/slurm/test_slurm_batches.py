"""PyMW programs on a real one-node Slurm cluster: the example, a thousand tasks as
arrays, task errors and data files, the frozen worker, and options Slurm refuses."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tasks_for_tests import divide, read_data_file, square

from pymw import pymw
from pymw.errors import RemoteTraceback

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[4]
MONTE_PI = ROOT / "examples" / "monte_pi.py"


def _monte_pi(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MONTE_PI), "-i", "slurm", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _estimate(output: str) -> float:
    match = re.search(r"Estimate of pi: ([\d.]+)", output)
    assert match, output
    return float(match.group(1))


def test_monte_pi_prints_a_correct_estimate(slurm, tmp_path):
    run = _monte_pi("-n", "2", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert abs(_estimate(run.stdout) - math.pi) < 0.01
    assert "Tasks: 2, tests per task: 500000" in run.stdout
    assert not (tmp_path / "pymw-slurm").exists()  # the work directory goes at the end


def test_a_thousand_tasks_complete_as_arrays(make_interface):
    interface = make_interface(num_workers=1000, max_array_size=400)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [master.submit_task(square, input_data=(i,)) for i in range(1000)]
        results = [master.get_result(task)[1] for task in tasks]
        status = interface.get_status()
    assert results == [i * i for i in range(1000)]
    assert status["tasks_submitted"] == 1000
    # Arrays of up to 400 elements, one sbatch each; tasks that came apart (a loaded
    # machine pausing the submitting loop) may start another array, but nothing like
    # one sbatch per task.
    assert 3 <= status["arrays_submitted"] <= 10


def test_task_errors_and_data_files_travel_like_on_any_engine(make_interface, tmp_path):
    data = tmp_path / "greeting.txt"
    data.write_text("hello from the shared filesystem")
    with pymw.PyMW_Master(make_interface(), show_progress=False) as master:
        good = master.submit_task(square, input_data=(12,))
        bad = master.submit_task(divide, input_data=(1, 0))
        reads = master.submit_task(read_data_file, ("greeting.txt",), data_files=[data])
        assert master.get_result(good)[1] == 144
        with pytest.raises(ZeroDivisionError) as raised:
            master.get_result(bad)
        assert isinstance(raised.value.__cause__, RemoteTraceback)
        assert "divide" in raised.value.__cause__.traceback_text
        assert master.get_result(reads)[1] == "hello from the shared filesystem"


def test_the_frozen_pyboinc_worker_runs_the_tasks(slurm, pyboinc_dist, tmp_path):
    run = _monte_pi("-n", "2", "-c", str(pyboinc_dist), "-a", "1.00_python311.zip", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert abs(_estimate(run.stdout) - math.pi) < 0.01


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--slurm-partition", "nope"], "partition"),
        (["--slurm-time", "abc"], "--time"),
    ],
)
def test_options_slurm_refuses_are_one_line_and_exit_2(slurm, tmp_path, option, named):
    run = _monte_pi(*option, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "Slurm refused the job options" in run.stderr and named in run.stderr
    assert option[1] in run.stderr
    assert slurm.run("squeue", "--noheader", "--states=PD,R").stdout == ""
    assert not (tmp_path / "pymw-slurm").exists()  # refused before anything was written
