"""The BOINC interface against a sandbox project (the stand-in for a BOINC 8 server)."""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tasks_for_tests as t
from one_line_errors import assert_one_line_error

from pymw import interfaces, pymw
from pymw.errors import MalformedResultError, TaskError, UserError
from pymw.interfaces.boinc import BOINCInterface, registry
from pymw.interfaces.boinc.constants import (
    ASSIMILATOR_SCRIPT,
    OBSOLETE_DAEMONS,
    REQUIRED_DAEMONS,
    VALIDATOR_SCRIPT,
)
from pymw.testing.boinc_sandbox.control import daemon_states
from pymw.testing.boinc_sandbox.layout import add_daemon
from pymw.testing.boinc_sandbox.processes import is_alive, wait_until

ROOT = Path(__file__).resolve().parents[4]

MONTE_PI = ROOT / "examples" / "monte_pi.py"


def run_monte_pi(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(MONTE_PI), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
        and "log_" not in str(p)
        and "pid_" not in str(p)
        and p.suffix not in (".db", ".db-journal", ".log")
    }


def test_setup_installs_everything_once(sandbox, tmp_path):
    first = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    assert "added the pymw app (bin/xadd)" in first.setup_changes
    assert "added daemon script_validator to config.xml" in first.setup_changes
    config = (sandbox.project_dir / "config.xml").read_text()
    for daemon in REQUIRED_DAEMONS:
        assert f"<cmd>{daemon}</cmd>" in config
    for script in (ASSIMILATOR_SCRIPT, VALIDATOR_SCRIPT):
        assert os.access(sandbox.project_dir / "bin" / script, os.X_OK)
    version_dir = sandbox.project_dir / "apps" / "pymw" / "1.00" / "x86_64-pc-linux-gnu"
    assert (version_dir / "version.xml").is_file()
    before = snapshot(sandbox.project_dir)
    second = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    assert second.setup_changes == []
    assert snapshot(sandbox.project_dir) == before


def test_hostile_result_fails_only_its_task_and_runs_nothing(sandbox, tmp_path):
    """A result file placed where the assimilator delivers is decoded, never unpickled."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    interface = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        hostile = master.submit_task(t.square, input_data=(1,))
        honest = master.submit_task(t.square, input_data=(2,))
        wu_names = _wait_for_workunits(interface, 2)
        task_dir = tmp_path / "tasks"
        (task_dir / f"{wu_names[hostile.task_id]}.out").write_bytes(pickle.dumps(Exploit()))
        honest_output = _run_contract_locally(interface, honest, tmp_path)
        (task_dir / f"{wu_names[honest.task_id]}.out").write_bytes(honest_output)
        with pytest.raises(MalformedResultError, match="malformed result"):
            master.get_result(hostile)
        assert master.get_result(honest)[1] == 4
    assert not marker.exists()


def test_a_read_output_stays_until_its_batch_is_complete(sandbox, tmp_path):
    """A master killed after reading some outputs reruns on the same workunits, and BOINC
    delivers each output once: so outputs go only when the whole batch is collected."""
    interface = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        first = master.submit_task(t.square, input_data=(3,))
        second = master.submit_task(t.square, input_data=(4,))
        wu_names = _wait_for_workunits(interface, 2)
        first_output = interface.task_dir / f"{wu_names[first.task_id]}.out"
        first_output.write_bytes(_run_contract_locally(interface, first, tmp_path))
        assert master.get_result(first)[1] == 9
        assert first_output.exists()  # a kill now leaves it for the rerun
        second_output = interface.task_dir / f"{wu_names[second.task_id]}.out"
        second_output.write_bytes(_run_contract_locally(interface, second, tmp_path))
        assert master.get_result(second)[1] == 16
    assert not first_output.exists() and not second_output.exists()


def test_a_rerun_says_it_reattaches_to_the_workunits_its_first_run_made(sandbox, tmp_path, caplog):
    """With -v, a rerun that submits nothing says why: it awaits the first run's work."""
    caplog.set_level(logging.INFO, logger="pymw.boinc")
    said = []
    for _ in range(2):
        caplog.clear()
        interface = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
        with pymw.PyMW_Master(interface, show_progress=False) as master:
            for number in (3, 4):
                master.submit_task(t.square, input_data=(number,))
            _wait_for_workunits(interface, 2)
        said.append([record.getMessage() for record in caplog.records])
    first, rerun = said
    # In one create_work or two, as the dispatcher met the submissions.
    created = [int(m.split()[1]) for m in first if m.startswith("created ")]
    assert sum(created) == 2, first
    assert not any("reattaching" in message for message in first)
    assert [message for message in rerun if "reattaching" in message] == [
        f"reattaching to the workunits an earlier run made in batch {interface.checkpoint.batch}"
        ": their results are awaited, not asked for again"
    ]
    assert not any(message.startswith("created") for message in rerun)


def _wait_for_workunits(interface: BOINCInterface, count: int) -> dict[int, str]:
    deadline = time.time() + 30
    while time.time() < deadline:
        created = {
            name: pending.task_id
            for name, pending in list(interface._pending.items())
            if name in interface.checkpoint.created
        }
        if len(created) == count:
            return {task_id: name for name, task_id in created.items()}
        time.sleep(0.1)
    raise AssertionError("workunits were not created")


def _run_contract_locally(interface, task, tmp_path) -> bytes:
    """What an honest volunteer would upload for `task`: run its script with python3."""
    slot = tmp_path / f"slot{task.task_id}"
    slot.mkdir()
    (slot / "task.py").write_text(task.program.script)
    (slot / "in").write_bytes(task.input_bytes)
    subprocess.run([sys.executable, "task.py", "in", "out"], cwd=slot, check=True)
    return (slot / "out").read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "boinc"], "needs the project directory: add -p"),
        (["-i", "boinc", "-p", "/"], "is not a BOINC project"),
        (["-i", "boinc", "-p", "/no/such/project"], "does not exist"),
    ],
)
def test_bad_project_options_are_one_line_errors(tmp_path, args, message):
    assert_one_line_error(run_monte_pi(*args, cwd=tmp_path), message)


def _fake_build(root: Path, *, with_exe: bool, with_zip: bool) -> Path:
    os_dir = root / "linux"
    os_dir.mkdir(parents=True)
    exe, stdlib = "pymw_1.03_x86_64-pc-linux-gnu", "1.00_python311.zip"
    files = []
    if with_exe:
        (os_dir / exe).write_text("#!/bin/sh\n")
    files.append({"file": exe, "role": "executable"})
    if with_zip:
        (os_dir / stdlib).write_bytes(b"PK")
        files.append({"file": stdlib, "role": "stdlib"})
    (os_dir / "manifest.json").write_text(
        json.dumps(
            {
                "format": "pymw-worker-manifest/1",
                "os": "linux",
                "platform": "x86_64-pc-linux-gnu",
                "legacy_platforms": [],
                "app_version": "1.03",
                "files": files,
            }
        )
    )
    return root


@pytest.mark.parametrize(
    ("with_exe", "with_zip", "message"),
    [(False, True, "no worker executable"), (True, False, "no stdlib zip '1.00_python311.zip'")],
)
def test_bad_custom_worker_dirs_are_one_line_errors(
    stopped_sandbox, tmp_path, with_exe, with_zip, message
):
    build = _fake_build(tmp_path / "dist", with_exe=with_exe, with_zip=with_zip)
    run = run_monte_pi(
        "-i",
        "boinc",
        "-p",
        str(stopped_sandbox.project_dir),
        "-c",
        str(build),
        "-a",
        "1.00_python311.zip",
        cwd=tmp_path,
    )
    assert_one_line_error(run, message)


def test_custom_dir_without_zip_argument_is_refused(stopped_sandbox, tmp_path):
    build = _fake_build(tmp_path / "dist", with_exe=True, with_zip=True)
    with pytest.raises(UserError, match=r"add -a 1\.00_python311\.zip"):
        BOINCInterface(stopped_sandbox.project_dir, custom_app_dir=build)


def test_changed_app_version_content_asks_for_a_version_bump(stopped_sandbox, tmp_path):
    build = _fake_build(tmp_path / "dist", with_exe=True, with_zip=True)
    version_dir = stopped_sandbox.project_dir / "apps" / "pymw" / "1.03" / "x86_64-pc-linux-gnu"
    version_dir.mkdir(parents=True)
    (version_dir / "version.xml").write_text("<version/>")
    with pytest.raises(UserError, match="bump the version"):
        BOINCInterface(
            stopped_sandbox.project_dir,
            custom_app_dir=build,
            custom_args=["1.00_python311.zip"],
            task_path=tmp_path / "tasks",
        )


def test_compare_policy_and_quorum_reach_the_registry_and_workunits(sandbox, tmp_path, monkeypatch):
    """-q N makes N results that must all agree; set_boinc_args' validator is what
    bin/pymw_validator reads for the batch."""
    monkeypatch.chdir(tmp_path)  # the task directory is ./tasks, as for a user's program
    args = ["-i", "boinc", "-p", str(sandbox.project_dir), "-q", "3"]
    options, _ = interfaces.parse_options(args=args)
    interface = BOINCInterface.from_options(options)
    assert (interface.boinc_args.target_nresults, interface.boinc_args.min_quorum) == (3, 3)
    interface.set_boinc_args(2, 2, max_nbytes=4096, validator="fuzzy", rtol=1e-6)
    entry = registry.read_entry(str(sandbox.project_dir), interface.checkpoint.batch)
    assert entry["compare"] == "fuzzy" and entry["rtol"] == 1e-6 and entry["max_nbytes"] == 4096
    assert entry["task_dir"] == str(interface.task_dir)
    for bad, message in [
        ({"validator": "approximate"}, "'exact' or 'fuzzy'"),
        ({"rtol": 0.1}, "need validator='fuzzy'"),
        ({"validator": "fuzzy", "atol": -1}, "must be >= 0"),
        ({"quorum": 2}, "unknown setting"),
    ]:
        with pytest.raises(UserError, match=message):
            interface.set_boinc_args(2, 2, **bad)


def test_results_that_never_agree_fail_the_task_naming_the_mask_and_the_dispute(sandbox, tmp_path):
    """What the assimilator and validator leave when the transitioner gave up on a
    workunit whose results kept disagreeing (error mask 4), as the master reports it."""
    interface = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        disputed = master.submit_task(t.square, input_data=(1,))
        master.submit_task(t.square, input_data=(2,))
        wu_names = _wait_for_workunits(interface, 2)
        disputed_wu = wu_names[disputed.task_id]
        other_wu = next(name for name in wu_names.values() if name != disputed_wu)
        (interface.task_dir / registry.VALIDATION_LOG).write_text(
            f"disagreed {disputed_wu} {disputed_wu}_0_0 {disputed_wu}_1_0\n"
            f"rejected {other_wu} {other_wu}_1_0: malformed encoded value\n"
            "disagreed pymw_17_00cc pymw_17_00cc_0_0 pymw_17_00cc_1_0\n"  # another batch's
        )
        status = master.get_status()["interface"]
        assert (status["disagreed"], status["rejected"]) == ([disputed_wu], [other_wu])
        record = {"wu_name": disputed_wu, "error_mask": "4"}
        (interface.task_dir / f"{disputed_wu}.error").write_text(json.dumps(record))
        with pytest.raises(TaskError, match="error mask 4: too many success results") as raised:
            master.get_result(disputed)
        assert "never agreed" in str(raised.value) and "results disagreed" in str(raised.value)


def test_setup_retires_the_trivial_validator_an_earlier_pymw_started(sandbox, tmp_path):
    """bin/stop ends only the daemons config.xml lists: the old validator must be
    stopped before its line goes, or it keeps accepting results unchecked."""
    BOINCInterface(sandbox.project_dir, task_path=tmp_path / "first").cleanup()
    stem = "sample_trivial_validator_app_pymw"  # what PyMW 0.4 named its files
    add_daemon(sandbox.project, OBSOLETE_DAEMONS[0], f"{stem}.log", f"{stem}.pid")
    sandbox.run_tool("start")
    (old_pid,) = [pid for d, pid in daemon_states(sandbox.project) if "trivial" in d.cmd]
    assert old_pid and is_alive(old_pid)
    migrated = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "second")
    assert migrated.setup_changes == ["removed daemon sample_trivial_validator from config.xml"]
    assert wait_until(lambda: not is_alive(old_pid), 10), "the old validator still runs"
    assert "sample_trivial_validator" not in (sandbox.project_dir / "config.xml").read_text()
    running = {d.program for d, pid in daemon_states(sandbox.project) if pid}
    assert "script_validator" in running
    assert BOINCInterface(sandbox.project_dir, task_path=tmp_path / "third").setup_changes == []
