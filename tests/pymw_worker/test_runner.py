"""The worker side: running jobs, handing back unstarted ones, the initializer, and
what a worker process imports."""

import subprocess
import sys
import zipfile

import pytest

from pyboinc import contract
from pymw.programs import program_from_function
from pymw_worker import inbox, records
from pymw_worker.runner import TaskRunner


def read_data(name):
    with open(name) as handle:
        return handle.read()


def make_bytes(size):
    return b"y" * size


def refuse():
    raise RuntimeError("cannot start")


def _job(function, args=(), task_id=1, **fields) -> records.Job:
    program = program_from_function(function)
    return records.Job(
        task_id,
        program.digest,
        program.function_name,
        contract.encode_input(args, fields.get("data_zip")),
        program.script if fields.get("fresh") else program.code,
        **fields,
    )


def test_an_archive_sent_with_the_job_is_unpacked_where_the_task_runs(tmp_path, monkeypatch):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("greeting.txt", "hello from the master")
    rank_dir = tmp_path / "rank"  # no shared filesystem: the archive comes in the job
    rank_dir.mkdir()
    monkeypatch.chdir(rank_dir)
    job = _job(read_data, ("greeting.txt",), data_zip="data.zip")
    job = records.Job(**{**_fields(job), "archive": archive.read_bytes()})
    reply = TaskRunner(str(rank_dir)).run(job)
    assert contract.decode_output(reply.output).value == "hello from the master"


@pytest.mark.parametrize("fresh", [False, True], ids=["in-process", "fresh process"])
def test_an_output_over_the_jobs_cap_is_refused_not_sent(tmp_path, monkeypatch, fresh):
    monkeypatch.chdir(tmp_path)
    job = _job(make_bytes, (100_000,), fresh=fresh, max_output=10_000)
    reply = TaskRunner(str(tmp_path)).run(job)
    assert reply.output is None
    assert reply.oversize > 100_000


def test_a_recall_hands_back_only_the_jobs_not_started():
    jobs = inbox.Inbox()
    sent: list[records.Reply] = []
    for task_id in (1, 2, 3):
        jobs.deliver(records.Job(task_id, "p", "f"), sent.append)
    assert jobs.take().task_id == 1  # now running
    jobs.deliver(records.Recall((1, 3)), sent.append)
    assert sent == [records.Reply(3, status=records.RELEASED)]
    assert jobs.take().task_id == 2


def test_a_failing_initializer_is_reported_and_stops_the_worker(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    jobs = inbox.Inbox()
    sent: list[records.Reply] = []
    jobs.deliver(records.Job(**{**_fields(_job(refuse, task_id=-1)), "setup": True}), sent.append)
    jobs.deliver(_job(make_bytes, (1,), task_id=2), sent.append)
    assert inbox.serve(jobs, TaskRunner(str(tmp_path)), sent.append) == 1
    [reply] = sent
    assert reply.status == records.SETUP_FAILED
    assert "cannot start" in contract.decode_output(reply.output).error_message


def test_worker_processes_import_no_part_of_the_master():
    code = (
        "import sys, pymw_worker.persistent, pymw_worker.mpi_ranks, pymw_worker.mpi_hub; "
        "print(sorted(m for m in sys.modules if m == 'pymw' or m.startswith('pymw.')))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def _fields(job: records.Job) -> dict:
    return {name: getattr(job, name) for name in records.Job.__dataclass_fields__}


def test_a_job_recalled_sent_again_and_recalled_again_is_never_run():
    jobs = inbox.Inbox()
    sent: list[records.Reply] = []
    jobs.deliver(records.Job(1, "p", "f"), sent.append)
    jobs.deliver(records.Job(2, "p", "f"), sent.append)
    assert jobs.take().task_id == 1
    for _ in range(2):  # handed back, sent to this worker again, handed back again
        jobs.deliver(records.Recall((2,)), sent.append)
        jobs.deliver(records.Job(2, "p", "f"), sent.append)
    jobs.deliver(records.Recall((2,)), sent.append)
    jobs.deliver(records.Job(3, "p", "f"), sent.append)
    assert [reply.status for reply in sent] == [records.RELEASED] * 3
    assert jobs.take().task_id == 3


def test_workers_sharing_a_folder_write_a_script_each_without_clashing(tmp_path, monkeypatch):
    """Two workers given a new program at once both write its script to the master's
    folder; one's temporary file must not be the other's (seen: FileNotFoundError)."""
    monkeypatch.chdir(tmp_path)
    job = _job(make_bytes, (3,), fresh=True)
    script = tmp_path / "scripts" / f"{job.program}.py"
    script.parent.mkdir()
    (tmp_path / "scripts" / f"{job.program}.py.part").mkdir()  # the other worker's, mid-write
    reply = TaskRunner(str(tmp_path)).run(job)
    assert contract.decode_output(reply.output).value == b"yyy"
