"""The binding's build: private scratch folders, and bytes that do not depend on TMPDIR (slow:
three C++ compiles, about 10 s)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyboinc_helpers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("compiled_binding")]

COMPILE = "from pyboinc.boinc_api import build_binding; print(build_binding.compile_in_place())"


def compile_with_tmpdir(tmpdir: Path) -> subprocess.Popen:
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmpdir)}
    return subprocess.Popen(
        [sys.executable, "-c", COMPILE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finished(process: subprocess.Popen) -> Path:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    return Path(out.decode().strip())


def test_two_builds_at_once_and_another_tmpdir_give_the_same_bytes(tmp_path):
    shared = tmp_path / "shared-tmp"
    # Two at once in one TMPDIR: each in its own scratch folder (a shared fixed one let
    # one build delete the other's work).
    first, second = compile_with_tmpdir(shared), compile_with_tmpdir(shared)
    module = finished(first)
    assert finished(second) == module
    together = hashlib.sha256(module.read_bytes()).hexdigest()
    assert not any(shared.iterdir())  # no scratch left behind
    other = tmp_path / "a" / "much" / "longer" / "temporary" / "directory"
    assert finished(compile_with_tmpdir(other)) == module
    data = module.read_bytes()
    assert hashlib.sha256(data).hexdigest() == together  # the build-id too
    assert str(tmp_path).encode() not in data
