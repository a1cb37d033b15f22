"""The HTCondor interface against the real `htcondor2` bindings, without a pool.

A stand-in schedd takes the real `Submit` the interface builds, runs each job's worker
contract command in its folder, as a pool machine would after file transfer, and writes
HTCondor user-log records that the interface reads back with the real `JobEventLog`.
The live-pool test at the end skips when no schedd answers.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

htcondor2 = pytest.importorskip("htcondor2")

from pymw import Executor  # noqa: E402
from pymw.errors import TaskError, UserError, WorkerLostError  # noqa: E402
from pymw.interfaces import condor  # noqa: E402
from pymw.worker_app import WorkerApp  # noqa: E402

CLUSTER = 123


def double(x):
    return 2 * x


def crash(x):
    raise KeyError(x)


def _record(code: int, proc: int, title: str, body: list[str]) -> str:
    stamp = datetime(2025, 5, 1, 10, 0, proc % 60).strftime("%Y-%m-%d %H:%M:%S")
    lines = [f"{code:03d} ({CLUSTER}.{proc:03d}.000) {stamp} {title}", *body, "..."]
    return "\n".join(lines) + "\n"


def terminated(proc: int, status: int) -> str:
    usage = "Usr 0 00:00:00, Sys 0 00:00:00"
    return _record(
        5,
        proc,
        "Job terminated.",
        [
            f"\t(1) Normal termination (return value {status})",
            f"\t\t{usage}  -  Run Remote Usage",
            f"\t\t{usage}  -  Run Local Usage",
            f"\t\t{usage}  -  Total Remote Usage",
            f"\t\t{usage}  -  Total Local Usage",
            "\t0  -  Run Bytes Sent By Job",
            "\t0  -  Run Bytes Received By Job",
            "\t0  -  Total Bytes Sent By Job",
            "\t0  -  Total Bytes Received By Job",
        ],
    )


def held(proc: int, reason: str) -> str:
    return _record(12, proc, "Job was held.", [f"\t{reason}", "\tCode 13 Subcode 2"])


def evicted(proc: int) -> str:
    usage = "Usr 0 00:00:00, Sys 0 00:00:00"
    return _record(
        4,
        proc,
        "Job was evicted.",
        [
            "\t(0) Job was not checkpointed.",
            f"\t\t{usage}  -  Run Remote Usage",
            f"\t\t{usage}  -  Run Local Usage",
            "\t0  -  Run Bytes Sent By Job",
            "\t0  -  Run Bytes Received By Job",
        ],
    )


class FakeResult:
    def __init__(self, cluster: int) -> None:
        self._cluster = cluster

    def cluster(self) -> int:
        return self._cluster


class StandInSchedd:
    """Runs submitted jobs locally and logs what a pool would; `fate` picks an outcome."""

    def __init__(self, fate=lambda item: "run") -> None:
        self.fate = fate
        self.submitted: list[tuple[htcondor2.Submit, list[dict]]] = []
        self.removed: list[str] = []

    def submit(self, description, itemdata):
        items = list(itemdata)
        self.submitted.append((description, items))
        records = []
        for proc, item in enumerate(items):
            fate = self.fate(item)
            if fate == "hold":
                records.append(held(proc, "Failed to transfer files"))
            elif fate == "evict":
                records.append(evicted(proc))
            else:
                records.append(terminated(proc, self._run(description, item)))
        with open(description["log"], "a") as log:
            log.write("".join(records))
        return FakeResult(CLUSTER)

    @staticmethod
    def _run(description, item) -> int:
        arguments = shlex.split(description["arguments"])
        return subprocess.run(
            [description["executable"], *arguments],
            cwd=item["task_dir"],
            capture_output=True,
            timeout=60,
        ).returncode

    def act(self, action, constraint):
        self.removed.append(constraint)


def _interface(schedd, **options):
    return condor.CondorInterface(
        num_workers=4, python=sys.executable, schedd=schedd, poll_interval=0.05, **options
    )


def test_submit_description_follows_the_worker_contract(tmp_path):
    interface = _interface(StandInSchedd())
    description = interface.description
    rendered = tmp_path / "python.sub"
    rendered.write_text(str(description))
    text = rendered.read_text()
    assert "universe = vanilla" in text
    assert "should_transfer_files = YES" in text
    assert description["arguments"] == "pymw_task.py input output"
    assert description["executable"] == sys.executable
    assert description["transfer_input_files"].startswith("$(task_dir)/pymw_task.py")
    assert "WINDOWS" not in description["requirements"]
    interface.cleanup()


def test_submit_description_for_the_frozen_worker_app(tmp_path):
    app = WorkerApp(
        tmp_path / "pymw_1.03_x86_64-pc-linux-gnu",
        tmp_path / "1.00_python311.zip",
        "x86_64-pc-linux-gnu",
        {"os": "linux"},
    )
    description = condor.submit_description(app, "python3", tmp_path / "jobs.log")
    (tmp_path / "app.sub").write_text(str(description))
    assert description["executable"] == str(app.executable)
    assert description["transfer_executable"] == "true"
    # <exe> <script> <stdlib zip> <input> <output>
    assert description["arguments"] == "pymw_task.py 1.00_python311.zip input output"
    assert str(app.stdlib_zip) in description["transfer_input_files"]
    assert 'TARGET.OpSys == "LINUX"' in description["requirements"]


def test_batches_run_and_complete_through_the_event_log():
    schedd = StandInSchedd()
    with Executor(interface=_interface(schedd)) as pool:
        assert list(pool.map(double, range(6))) == [0, 2, 4, 6, 8, 10]
        with pytest.raises(KeyError) as raised:
            pool.submit(crash, "k").result(timeout=60)
        assert "crash" in str(raised.value.__cause__)
    _description, items = schedd.submitted[0]
    assert {item["task_dir"] for item in items}  # one folder per job, as item data
    assert all(item["task_name"].startswith("double_") for item in items)


def big_bytes(size):
    return b"x" * size


def test_an_output_over_the_size_cap_is_refused_unread():
    from pymw.errors import MalformedResultError
    from pymw.submission import start_master

    submitter = start_master(_interface(StandInSchedd()), None, max_result_bytes=1 << 16)
    try:
        small = submitter.submit(big_bytes, (10,), with_future=True, collect=False)
        big = submitter.submit(big_bytes, (1 << 17,), with_future=True, collect=False)
        assert small.future.result(timeout=60) == b"x" * 10
        with pytest.raises(MalformedResultError, match=r"over max_result_bytes .* not read"):
            big.future.result(timeout=60)
    finally:
        submitter.master.shutdown()
        submitter.cleanup()


def test_held_and_evicted_jobs_are_task_errors_with_the_reason():
    fates = {"double_0": "hold", "double_1": "evict"}
    schedd = StandInSchedd(lambda item: fates.get(item["task_name"], "run"))
    with Executor(interface=_interface(schedd)) as pool:
        held_job, evicted_job, fine = (pool.submit(double, x) for x in range(3))
        with pytest.raises(TaskError, match="held the job: Failed to transfer files"):
            held_job.result(timeout=60)
        with pytest.raises(WorkerLostError, match="evicted"):
            evicted_job.result(timeout=60)
        assert fine.result(timeout=60) == 4
    assert any("ProcId == 0" in constraint for constraint in schedd.removed)


def test_event_log_written_by_the_test_is_parsed(tmp_path):
    log = tmp_path / "jobs.log"
    log.write_text(terminated(0, 0) + held(1, "Over quota") + evicted(2))
    events = list(htcondor2.JobEventLog(str(log)).events(stop_after=0))
    assert [event.type for event in events] == [
        htcondor2.JobEventType.JOB_TERMINATED,
        htcondor2.JobEventType.JOB_HELD,
        htcondor2.JobEventType.JOB_EVICTED,
    ]
    assert events[1]["HoldReason"] == "Over quota"


def test_no_schedd_is_a_one_line_user_error(tmp_path):
    script = Path(__file__).resolve().parents[3] / "examples" / "monte_pi.py"
    finished = subprocess.run(
        [sys.executable, str(script), "-i", "condor"], capture_output=True, text=True, timeout=60
    )
    if finished.returncode == 0:
        pytest.skip("a schedd answers on this machine")
    assert finished.returncode == UserError.exit_code
    assert finished.stderr.count("\n") == 1
    assert "no HTCondor schedd answers" in finished.stderr


def test_live_pool_runs_a_task():
    try:
        schedd = condor._local_schedd()
    except UserError as error:
        pytest.skip(f"no live HTCondor pool here: {error}")
    with Executor(interface=condor.CondorInterface(num_workers=1, schedd=schedd)) as pool:
        assert pool.submit(double, 21).result(timeout=600) == 42
