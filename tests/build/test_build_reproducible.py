"""Slow: a second portable build with another TMPDIR gives the session's build, byte for byte.

BOINC never changes a file's content under one name, so a rebuild of the same version
must give the same bytes wherever it runs. The cffi scratch path used to reach the exe's
build-id through the compiler's debug info. The other build is the session's
(tests/conftest.py, default TMPDIR), so this costs one portable build (about a minute).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_another_tmpdir_gives_the_same_worker_bytes(pyboinc_dist, tmp_path):
    other_tmp = tmp_path / "another" / "temporary" / "directory"
    other_tmp.mkdir(parents=True)
    out = tmp_path / "dist"
    build = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "build" / "build_workers.py"),
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
        ],
        env={**os.environ, "TMPDIR": str(other_tmp)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    ours = json.loads((out / "linux" / "manifest.json").read_text())
    session = json.loads((pyboinc_dist / "linux" / "manifest.json").read_text())
    digests = {entry["file"]: entry["sha256"] for entry in session["files"]}
    for entry in ours["files"]:
        assert entry["sha256"] == digests[entry["file"]], entry["file"]
    assert not any(other_tmp.iterdir())  # every scratch folder was removed
