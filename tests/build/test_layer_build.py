"""Slow: a numpy layer from PyPI's manylinux wheel, run by the frozen worker with `-c`.

`pyboinc_numpy_dist` (tests/conftest.py) adds the layer to the session's worker once.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyboinc_build import main

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER = "1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip"
ZIP = "1.00_python311.zip"


def test_the_layer_is_recorded_in_the_manifest_with_its_hash(pyboinc_numpy_dist):
    import hashlib

    os_dir = pyboinc_numpy_dist / "linux"
    manifest = json.loads((os_dir / "manifest.json").read_text())
    [entry] = [e for e in manifest["files"] if e["role"] == "layer"]
    assert entry["file"] == LAYER and entry["packages"] == ["numpy==2.2.6"]
    assert entry["sha256"] == hashlib.sha256((os_dir / LAYER).read_bytes()).hexdigest()
    assert {e["role"] for e in manifest["files"]} >= {"executable", "stdlib", "layer"}


def test_the_same_layer_again_is_accepted_and_other_content_asks_for_a_version(
    pyboinc_numpy_dist, capsys
):
    out = ["--out", str(pyboinc_numpy_dist), "--layers-only", "--with", "numpy==2.2.6"]
    assert main.main(out) == 0  # reproducible: same name, same bytes
    layer = pyboinc_numpy_dist / "linux" / LAYER
    original = layer.read_bytes()
    layer.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    try:
        assert main.main(out) == 2
        assert "bump the version (--layer-version, now 1.00)" in capsys.readouterr().err
    finally:
        layer.write_bytes(original)


def test_numpy_stats_runs_in_the_frozen_worker_with_c(pyboinc_numpy_dist, tmp_path):
    command = [sys.executable, str(REPO_ROOT / "examples" / "numpy_stats.py"), "-n", "2"]
    command += ["-s", "20000", "-c", str(pyboinc_numpy_dist), "-a", ZIP]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "Worker numpy: 2.2.6\n" in run.stdout  # the layer's, not the master's numpy
    assert "Readings: 40000" in run.stdout
    cache = pyboinc_numpy_dist / "linux" / "pymw-layer-cache"
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1  # two tasks, one unpacking
