"""The BOINC interface against a sandbox project (the stand-in for a BOINC 8 server)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tasks_for_tests as t

from pymw import pymw
from pymw.errors import MalformedResultError, UserError
from pymw.interfaces.boinc import BOINCInterface
from pymw.interfaces.boinc.constants import ASSIMILATOR_SCRIPT, REQUIRED_DAEMONS

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
    assert "added daemons to config.xml" in first.setup_changes
    config = (sandbox.project_dir / "config.xml").read_text()
    for daemon in REQUIRED_DAEMONS:
        assert f"<cmd>{daemon}</cmd>" in config
    assert os.access(sandbox.project_dir / "bin" / ASSIMILATOR_SCRIPT, os.X_OK)
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
    from pyboinc import contract

    slot = tmp_path / "slot"
    slot.mkdir()
    (slot / "task.py").write_text(task.program.script)
    (slot / "in").write_bytes(contract.encode_input((2,)))
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
    run = run_monte_pi(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr


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
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


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
