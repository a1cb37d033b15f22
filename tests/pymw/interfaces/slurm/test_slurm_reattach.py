"""A master killed with SIGKILL and started again reattaches to the arrays it submitted,
through the checkpoint in its work directory, and submits only what never was."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MASTER = Path(__file__).with_name("slurm_master.py")
COUNT = 6
ANSWER = sum(i * i for i in range(COUNT))


def _command(tmp_path: Path, *extra: str) -> list[str]:
    logs = tmp_path / "runs"
    logs.mkdir(exist_ok=True)
    return [sys.executable, str(MASTER), str(tmp_path / "work"), str(logs), str(COUNT), *extra]


def _rerun(tmp_path: Path) -> dict:
    """Run the master to the end; its interface status, checked answer and task runs."""
    run = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"answer {ANSWER}" in run.stdout
    status = json.loads(run.stdout.split("status ", 1)[1].splitlines()[0])
    assert not (tmp_path / "work").exists()  # done: the work directory is gone
    return status


def _runs_per_task(tmp_path: Path, *, missing_ok: bool = False) -> list[int]:
    logs = tmp_path / "runs"
    if missing_ok:
        return [len(p.read_text().splitlines()) for p in logs.iterdir()]
    return [len((logs / str(i)).read_text().splitlines()) for i in range(COUNT)]


def _checkpoint(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "work" / "checkpoint.json").read_text())


def _recorded_tasks(checkpoint: dict) -> int:
    """Tasks in the arrays a master recorded (tasks that came apart may make two arrays)."""
    return sum(len(array["keys"]) for array in checkpoint["arrays"].values())


def test_a_killed_master_reattaches_to_its_running_arrays(slurm, tmp_path):
    first = subprocess.Popen(_command(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().startswith("got ")  # one task done, five to go
    finally:
        first.kill()
        first.wait()
    job_ids = {array["job_id"] for array in _checkpoint(tmp_path)["arrays"].values()}
    waiting = slurm.run("squeue", "--noheader", f"--jobs={','.join(job_ids)}", "--states=PD,R")
    assert waiting.stdout.strip(), "the killed master's arrays should still be queued"

    status = _rerun(tmp_path)
    assert status["arrays_submitted"] == 0
    assert status["tasks_reattached"] == COUNT
    assert set(status["arrays"].values()) == job_ids
    assert _runs_per_task(tmp_path) == [1] * COUNT  # no task ran twice


def test_a_master_killed_right_after_sbatch_finds_its_array_by_name(slurm, tmp_path):
    died = subprocess.run(_command(tmp_path, "--die-after-sbatch"), timeout=120)
    assert died.returncode == -9
    checkpoint = _checkpoint(tmp_path)
    assert checkpoint["arrays"]["0"]["job_id"] is None  # died before it could record it
    recorded = _recorded_tasks(checkpoint)
    status = _rerun(tmp_path)
    assert status["arrays"]["0"] is not None  # found by its job name
    assert status["tasks_reattached"] == recorded
    assert status["tasks_submitted"] == COUNT - recorded  # only what never was submitted
    assert _runs_per_task(tmp_path) == [1] * COUNT


def test_a_master_killed_before_sbatch_submits_the_array_on_its_rerun(slurm, tmp_path):
    died = subprocess.run(_command(tmp_path, "--die-before-sbatch"), timeout=120)
    assert died.returncode == -9
    time.sleep(1)  # nothing was submitted: nothing may run meanwhile
    assert not any((tmp_path / "runs").iterdir())
    recorded = _recorded_tasks(_checkpoint(tmp_path))
    status = _rerun(tmp_path)
    assert status["tasks_reattached"] == recorded  # the recorded array, submitted now
    assert status["tasks_submitted"] == COUNT
    assert _runs_per_task(tmp_path) == [1] * COUNT


def test_a_master_stopped_with_ctrl_c_cancels_its_arrays(slurm, tmp_path):
    master = subprocess.Popen(_command(tmp_path), stdout=subprocess.PIPE, text=True)
    try:
        assert master.stdout.readline().startswith("got ")
        job_ids = {array["job_id"] for array in _checkpoint(tmp_path)["arrays"].values()}
        master.send_signal(signal.SIGINT)
        assert master.wait(timeout=60) != 0
    finally:
        master.kill()
    left = slurm.run("squeue", "--noheader", f"--jobs={','.join(job_ids)}", "--states=PD,R")
    assert left.stdout.strip() == ""
    assert not (tmp_path / "work").exists()
    assert sum(_runs_per_task(tmp_path, missing_ok=True)) < COUNT  # the rest never ran
