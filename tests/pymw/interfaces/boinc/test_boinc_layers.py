"""Package layers as files of the BOINC app version, and of the `-c` worker app.

A layer stays in the project directory behind a <soft_link> (no <copy_file/>: the worker
unpacks it once beside itself), under one logical name on every platform, and the
workunit's command line names it after the stdlib zip. The real client runs one in
tests/pymw/interfaces/boinc/test_boinc_end_to_end.py (slow).
"""

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pymw.errors import UserError
from pymw.interfaces.boinc.app_versions import frozen_worker_versions, install
from pymw.worker_app import find_worker_app

ZIP = "1.00_python311.zip"
NUMPY_STATS = Path(__file__).resolve().parents[4] / "examples" / "numpy_stats.py"


def fake_build(root: Path, os_name: str, platform: str, layer: str | None) -> Path:
    os_dir = root / os_name
    os_dir.mkdir(parents=True)
    exe = f"pymw_1.03_{platform}"
    files = [{"file": exe, "role": "executable"}, {"file": ZIP, "role": "stdlib"}]
    (os_dir / exe).write_text("#!/bin/sh\n")
    (os_dir / ZIP).write_bytes(b"PK stdlib")
    if layer is not None:
        name = f"1.00_{layer}_cp311_{platform}.zip"
        (os_dir / name).write_bytes(f"PK {layer}".encode())
        files.append({"file": name, "role": "layer", "packages": [layer.replace("-", "==")]})
    manifest = {"format": "pymw-worker-manifest/1", "os": os_name, "platform": platform}
    manifest |= {"legacy_platforms": [], "app_version": "1.03", "files": files}
    (os_dir / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_layer_is_a_soft_linked_gzip_file_of_the_app_version(tmp_path):
    build = fake_build(tmp_path / "dist", "linux", "x86_64-pc-linux-gnu", "numpy-2.2.6")
    [version] = frozen_worker_versions(build, ZIP)
    assert version.stdlib_zip == "1.00_python311.zip,1.00_numpy-2.2.6_cp311.zip"
    files = {
        element.findtext("physical_name"): element
        for element in ET.fromstring(version.version_xml()).iter("file")
    }
    layer = files["1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip"]
    assert layer.findtext("logical_name") == "1.00_numpy-2.2.6_cp311.zip"
    assert layer.find("copy_file") is None and layer.find("gzip") is not None
    assert files["1.00_python311_x86_64-pc-linux-gnu.zip"].find("copy_file") is not None
    [added] = install([version], tmp_path / "project")
    installed = added.directory(tmp_path / "project")
    assert (installed / "1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip").read_bytes() == (
        b"PK numpy-2.2.6"
    )


def test_every_os_build_must_carry_the_same_layers(tmp_path):
    build = fake_build(tmp_path / "dist", "linux", "x86_64-pc-linux-gnu", "numpy-2.2.6")
    fake_build(build, "windows", "windows_x86_64", "numpy-2.2.6")
    names = {version.stdlib_zip for version in frozen_worker_versions(build, ZIP)}
    assert names == {"1.00_python311.zip,1.00_numpy-2.2.6_cp311.zip"}  # one command line

    other = fake_build(tmp_path / "other", "linux", "x86_64-pc-linux-gnu", "numpy-2.2.6")
    fake_build(other, "windows", "windows_x86_64", None)
    with pytest.raises(UserError, match=r"other package layers .* same --with"):
        frozen_worker_versions(other, ZIP)


def test_a_worker_without_layers_keeps_its_command_line(tmp_path):
    build = fake_build(tmp_path / "dist", "linux", "x86_64-pc-linux-gnu", None)
    [version] = frozen_worker_versions(build, ZIP)
    assert version.stdlib_zip == ZIP and len(version.files) == 2


def test_the_local_worker_app_passes_its_layers_after_the_zip(tmp_path, monkeypatch):
    monkeypatch.setattr("pymw.worker_app.host_os", lambda: "linux")
    build = fake_build(tmp_path / "dist", "linux", "x86_64-pc-linux-gnu", "numpy-2.2.6")
    os_dir = build / "linux"
    app = find_worker_app(build, [ZIP])
    layer = os_dir / "1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip"
    assert app.layers == (layer,)
    assert app.zip_argument() == f"{os_dir / ZIP},{layer}"
    layer.unlink()
    with pytest.raises(UserError, match="listed in the manifest but missing"):
        find_worker_app(build, [ZIP])


def test_a_worker_app_path_with_the_separator_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr("pymw.worker_app.host_os", lambda: "linux")
    build = fake_build(tmp_path / "a,b", "linux", "x86_64-pc-linux-gnu", None)
    with pytest.raises(UserError, match=r"cannot be named on its command line: .* contains ','"):
        find_worker_app(build, [ZIP])


@pytest.mark.slow
def test_numpy_stats_runs_in_the_frozen_worker_under_the_real_client(
    sandbox, volunteer, pyboinc_numpy_dist, tmp_path
):
    client = sandbox.add_client(exit_when_idle=False, fetch_minimal_work=False)
    command = [sys.executable, str(NUMPY_STATS), "-i", "boinc", "-p", str(sandbox.project_dir)]
    command += ["-n", "2", "-s", "20000", "-c", str(pyboinc_numpy_dist), "-a", ZIP]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, run.stderr
    assert "Worker numpy: 2.2.6\n" in run.stdout  # the layer's, not the master's numpy
    mean = float(re.search(r"Readings: 40000, mean ([0-9.]+)", run.stdout).group(1))
    assert abs(mean - 20.0) < 0.1, run.stdout
    # Unpacked once, beside the layer in the client's project directory, never in a slot.
    [cache] = client.data_dir.glob("projects/*/pymw-layer-cache")
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    assert (cache.parent / "1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip").is_file()
    assert not list(client.data_dir.glob("slots/*/1.00_numpy*/"))
    access_log = next(sandbox.project_dir.glob("log_*/httpd.log")).read_text()
    assert re.search(r"GET \S*1\.00_numpy-2\.2\.6_cp311_x86_64-pc-linux-gnu\.zip\.gz ", access_log)
