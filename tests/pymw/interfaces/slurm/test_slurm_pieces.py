"""The Slurm interface's parts that need no cluster: the batch script (run by bash, as a
node would), array specs, squeue's parsable lines, what each state means, the checkpoint,
the options, and the one-line error when Slurm is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tasks_for_tests import divide, square

from pyboinc import contract
from pymw.errors import UserError
from pymw.interfaces import parse_options
from pymw.interfaces.base import Job
from pymw.interfaces.slurm import SlurmOptions
from pymw.interfaces.slurm.arrays import WorkDir, array_spec, batch_script, worker_argv
from pymw.interfaces.slurm.checkpoint import ArrayRecord, Checkpoint, WorkDirLock
from pymw.interfaces.slurm.commands import hint_for, parse_states
from pymw.interfaces.slurm.states import Fate, describe, fate_of
from pymw.programs import program_from_function

ROOT = Path(__file__).resolve().parents[4]

# Lines as Slurm 22.05's `squeue --array --states=all --Format=...` printed them on the
# test cluster: finished, running, throttled, drained, killed for memory, cancelled,
# timed out, a node set down.
DRAINED = (
    "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority partitions"
)
SQUEUE_LINES = f"""\
7|0|COMPLETED|0|None
7|1|FAILED|256|NonZeroExitCode
8|0|RUNNING|0|None
8|1|PENDING|0|JobArrayTaskLimit
304|2|PENDING|0|{DRAINED}
4018|0|FAILED|9|JobLaunchFailure
4020|0|CANCELLED|15|None
302|0|TIMEOUT|15|TimeLimit
9|0|NODE_FAIL|15|NodeDown
12|N/A|RUNNING|0|None
"""


def _job(function, *args, task_id: int = 0) -> Job:
    program = program_from_function(function)
    return Job(task_id, f"{program.name}_{task_id}", program, contract.encode_input(args))


def test_the_batch_script_runs_the_worker_contract_and_records_the_exit_status(tmp_path):
    work = WorkDir(tmp_path / "work")
    work.make()
    work.write_element(0, 0, _job(square, 7))
    work.write_element(0, 1, _job(divide, 1, 0, task_id=1))
    script = work.array_dir(0) / "job.sh"
    script.write_text(batch_script(work, 0, worker_argv([sys.executable], None)))
    for index in (0, 1):
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(index)}
        subprocess.run(["bash", str(script)], env=env, timeout=60, capture_output=True)
    assert (work.done_dir / "0.0").read_text().strip() == str(contract.EXIT_OK)
    assert (work.done_dir / "0.1").read_text().strip() == str(contract.EXIT_TASK_FAILED)
    assert not list(work.done_dir.glob("*.part"))
    first = contract.decode_output((work.element_dir(0, 0) / "output").read_bytes())
    second = contract.decode_output((work.element_dir(0, 1) / "output").read_bytes())
    assert (first.ok, first.value) == (True, 49)
    assert (second.ok, second.error_type) == (False, "ZeroDivisionError")


def test_the_batch_script_names_the_frozen_worker_and_its_stdlib_zip(tmp_path):
    work = WorkDir(tmp_path / "work")
    command = worker_argv(["/apps/pymw_1.03"], Path("/apps/1.00_python311.zip"))
    text = batch_script(work, 3, command)
    assert "/apps/pymw_1.03 pymw_task.py /apps/1.00_python311.zip input output" in text
    assert f'cd {work.array_dir(3)}/"$SLURM_ARRAY_TASK_ID"' in text


@pytest.mark.parametrize(
    ("indices", "throttle", "spec"),
    [
        (range(1000), None, "0-999"),
        (range(1000), 16, "0-999%16"),
        (range(4), 16, "0-3"),  # no throttle when every element may run at once
        ([5, 1, 2, 3, 9], None, "1-3,5,9"),
        ([0], 1, "0"),
    ],
)
def test_array_spec(indices, throttle, spec):
    assert array_spec(list(indices), throttle) == spec


def test_squeue_lines_are_read_per_element():
    states = parse_states(SQUEUE_LINES)
    assert len(states) == 9  # the plain job (no index) is not ours
    assert (states[1].array_job, states[1].index, states[1].exit_code) == ("7", 1, 1)
    assert states[5].signal == 9


def test_what_each_state_means_for_the_task():
    fates = [fate_of(state) for state in parse_states(SQUEUE_LINES)]
    assert fates == [
        Fate.ENDED,
        Fate.ENDED,  # exited 1: its marker tells the rest
        Fate.ACTIVE,
        Fate.WAITING,  # the array's own %N throttle
        Fate.STUCK,  # a drained node
        Fate.KILLED,  # signal 9: over its memory limit
        Fate.KILLED,
        Fate.KILLED,
        Fate.LOST,
    ]


def test_slurms_words_are_in_the_description():
    timeout = parse_states(SQUEUE_LINES)[7]
    assert describe(timeout) == "Slurm job 302_0 TIMEOUT (TimeLimit, signal 15)"


def test_checkpoint_round_trip_and_the_newest_element_per_task(tmp_path):
    checkpoint = Checkpoint.load_or_start(tmp_path)
    checkpoint.arrays[0] = ArrayRecord(["a", "b"], "101")
    checkpoint.arrays[1] = ArrayRecord(["b"], None)  # b's retry, during sbatch
    checkpoint.save()
    again = Checkpoint.load_or_start(tmp_path)
    assert again.token == checkpoint.token
    assert again.job_name(1) == f"pymw-{checkpoint.token}-1"
    assert again.latest_elements() == {"a": (0, 0), "b": (1, 0)}
    assert again.arrays[1].job_id is None


def test_a_damaged_checkpoint_is_one_line_saying_what_to_do(tmp_path):
    (tmp_path / "checkpoint.json").write_text("{not json")
    with pytest.raises(UserError, match=r"is damaged .*remove it"):
        Checkpoint.load_or_start(tmp_path)


def test_one_master_per_work_directory(tmp_path):
    first = WorkDirLock(tmp_path)
    with pytest.raises(UserError, match=rf"pid {os.getpid()}.*--slurm-dir"):
        WorkDirLock(tmp_path)
    first.release()
    WorkDirLock(tmp_path).release()


def test_command_line_options_become_sbatch_options():
    options, _ = parse_options(
        args=[
            "-i", "slurm", "--slurm-partition", "short", "--slurm-account", "lab",
            "--slurm-time", "0:10:00", "--slurm-cpus-per-task", "2", "--slurm-mem", "1G",
            "--slurm-arg", "--qos=debug --exclusive", "--slurm-arg=--nice=5",
        ]
    )  # fmt: skip
    assert SlurmOptions.from_options(options).sbatch_args() == [
        "--partition=short",
        "--account=lab",
        "--time=0:10:00",
        "--cpus-per-task=2",
        "--mem=1G",
        "--qos=debug",
        "--exclusive",
        "--nice=5",
    ]


def test_hints_for_the_errors_users_meet_first():
    assert "MM:SS" in hint_for("error: Invalid --time specification")
    assert "sinfo" in hint_for("invalid partition specified: nope")
    assert hint_for("something else") == ""


def test_without_slurm_on_path_it_is_one_line_and_exit_2(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "monte_pi.py"), "-i", "slurm"],
        env={**os.environ, "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "sbatch" in run.stderr and "not found on PATH" in run.stderr
