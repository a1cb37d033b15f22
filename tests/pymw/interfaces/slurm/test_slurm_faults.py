"""Faults on a real Slurm cluster, each made the way an administrator or Slurm makes it:
scancel, a time limit, a memory limit, a node drained or set down mid-batch, slurmctld
killed. Each fails its task with Slurm's reason, or is retried under max_retries; the
master never hangs."""

from __future__ import annotations

import os
import signal
import time

import pytest
from slurm_tasks import hold_memory
from tasks_for_tests import slow_square, square

from pymw import pymw
from pymw.errors import TaskError
from pymw.interfaces.slurm import SlurmOptions

pytestmark = pytest.mark.slow

#: Seconds a test waits for Slurm to start a job.
START_TIMEOUT = 60


def _element_ids(slurm, interface, state: str) -> list[str]:
    """The test's array elements in this Slurm state (`<job>_<index>`)."""
    job_ids = [job for job in interface.get_status()["arrays"].values() if job]
    if not job_ids:
        return []
    listing = slurm.run(
        "squeue", "--noheader", "--array", f"--states={state}", f"--jobs={','.join(job_ids)}",
        "--format=%i",
    )  # fmt: skip
    return sorted(listing.stdout.split())


def _wait_running(slurm, interface, count: int = 1) -> list[str]:
    deadline = time.monotonic() + START_TIMEOUT
    while len(running := _element_ids(slurm, interface, "RUNNING")) < count:
        assert time.monotonic() < deadline, "Slurm did not start the jobs"
        time.sleep(0.2)
    return running


def test_a_cancelled_job_fails_its_task_with_slurms_reason(slurm, make_interface):
    interface = make_interface(num_workers=4)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        doomed = master.submit_task(slow_square, input_data=(3, 120))
        fine = master.submit_task(square, input_data=(5,))
        assert master.get_result(fine)[1] == 25
        (element,) = _wait_running(slurm, interface)
        slurm.run("scancel", element)
        with pytest.raises(TaskError, match=rf"Slurm job {element} CANCELLED.*CANCELLED AT"):
            master.get_result(doomed)


def test_a_job_over_its_time_limit_fails_with_slurms_reason(make_interface):
    # Slurm counts time limits in whole minutes and checks them every 30 s: ~90 s.
    interface = make_interface(options=SlurmOptions(time="1"))
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        task = master.submit_task(slow_square, input_data=(3, 600))
        with pytest.raises(TaskError, match=r"TIMEOUT \(TimeLimit.*DUE TO TIME LIMIT"):
            master.get_result(task)


def test_a_job_over_its_memory_limit_fails_with_slurms_reason(make_interface):
    # No cgroups here: jobacct_gather samples the step every second and kills it
    # (JobAcctGatherParams=OverMemoryKill); Slurm calls that FAILED, signal 9.
    interface = make_interface(options=SlurmOptions(mem="50M"))
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        task = master.submit_task(hold_memory, input_data=(300, 60))
        with pytest.raises(TaskError, match=r"signal 9.*exceeded memory limit"):
            master.get_result(task)


def test_a_node_drained_mid_batch_finishes_its_jobs_and_fails_the_waiting_ones(
    slurm, make_interface
):
    interface = make_interface(num_workers=2, stuck_timeout=3)  # 2 of the 4 at a time
    with pymw.Executor(interface=interface) as pool:
        # One map is one submission, so one array: tasks submitted one by one could make
        # two (a master stalled past SUBMIT_LINGER between them), which run 2 each.
        results = pool.map(slow_square, range(4), [4] * 4)
        _wait_running(slurm, interface, count=2)
        slurm.run("scontrol", "update", f"nodename={slurm.node_name}", "state=drain", "reason=test")
        assert [next(results), next(results)] == [0, 1]
        with pytest.raises(TaskError, match=r"could not start .*DOWN, DRAINED"):
            next(results)
    assert len(interface.get_status()["arrays"]) == 1
    assert _element_ids(slurm, interface, "PENDING") == []  # cancelled, not left behind


def test_a_node_failure_is_retried_under_max_retries(slurm, make_interface):
    # Without --no-requeue Slurm itself requeues the job, after a 120 s hold.
    interface = make_interface(options=SlurmOptions(extra=("--no-requeue",)))
    with pymw.PyMW_Master(interface, show_progress=False, max_retries=1) as master:
        task = master.submit_task(slow_square, input_data=(6, 5))
        _wait_running(slurm, interface)
        slurm.run("scontrol", "update", f"nodename={slurm.node_name}", "state=down", "reason=test")
        assert master.get_result(task)[1] == 36
    assert task.attempts == 2
    assert interface.get_status()["arrays_submitted"] == 2


def test_a_batch_outlives_slurmctld_going_away(slurm, make_interface):
    interface = make_interface()
    try:
        with pymw.PyMW_Master(interface, show_progress=False) as master:
            task = master.submit_task(slow_square, input_data=(7, 3))
            _wait_running(slurm, interface)
            os.kill(slurm.status()["daemons"]["slurmctld"], signal.SIGKILL)
            # squeue now fails (after its own retries, ~9 s); the task ends through its files.
            assert master.get_result(task)[1] == 49
    finally:
        slurm.start()  # a new controller, from clean state, for the tests after this one
    assert not interface.work.root.exists()
