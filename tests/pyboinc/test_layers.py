"""Package layers in the worker: unpacked once per host into a cache, importable, cleaned up.

The layers here are small pure-Python zips; the numpy layer runs in the frozen worker in
the slow tests (tests/build/test_layer_build.py, the BOINC end-to-end tests).
"""

import json
import os
import subprocess
import sys
import zipfile

import pytest
from pyboinc_helpers import REPO_ROOT, run_worker

from pyboinc import layers

CACHE = layers.CACHE_DIR


def make_layer(path, package="layered", value=1, extra=()):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{package}/__init__.py", f"VALUE = {value}\n")
        archive.writestr(f"{package}-1.0.dist-info/METADATA", "Name: layered\n")
        for name, data in extra:
            archive.writestr(name, data)
    return path


def trees(directory) -> list[str]:
    cache = directory / CACHE
    return sorted(p.name for p in cache.iterdir() if p.is_dir()) if cache.exists() else []


@pytest.fixture
def clean_sys_path():
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = saved_path
    for name in set(sys.modules) - saved_modules:
        del sys.modules[name]


def test_a_layer_is_unpacked_once_and_goes_right_after_the_stdlib_zip(tmp_path, clean_sys_path):
    layer = make_layer(tmp_path / "1.00_layered-1.0_cp311_x86_64-pc-linux-gnu.zip")
    sys.path.insert(0, "stdlib.zip")
    [tree] = layers.activate([str(layer)], after="stdlib.zip")
    assert sys.path[:2] == ["stdlib.zip", tree]
    import layered

    assert layered.VALUE == 1 and layered.__file__.startswith(tree)
    first = os.stat(tree).st_ino
    os.utime(layer)  # a changed mtime makes the worker hash the zip again: same tree
    assert layers.activate([str(layer)], after="stdlib.zip") == [tree]
    assert os.stat(tree).st_ino == first  # not unpacked again
    assert trees(tmp_path) == [os.path.basename(tree)]
    assert not [p for p in (tmp_path / CACHE).iterdir() if p.name.startswith(".tmp-")]


def test_the_cache_is_content_addressed(tmp_path, clean_sys_path):
    one = make_layer(tmp_path / "a.zip")
    (tmp_path / "b.zip").write_bytes(one.read_bytes())
    [tree_a] = layers.activate([str(one)], after="x")
    [tree_b] = layers.activate([str(tmp_path / "b.zip")], after="x")
    assert tree_a == tree_b  # same bytes, one tree, whatever the file is called


def test_a_tree_whose_zip_is_gone_is_removed_by_the_next_start(tmp_path, clean_sys_path):
    old = make_layer(tmp_path / "1.00_layered-1.0.zip", value=1)
    new = make_layer(tmp_path / "1.01_layered-1.1.zip", value=2)
    [old_tree] = layers.activate([str(old)], after="x")
    stale = tmp_path / CACHE / ".tmp-killedworker"
    stale.mkdir()
    (stale / "half.py").write_text("")
    os.utime(stale, (0, 0))  # left by a worker killed long ago
    fresh = tmp_path / CACHE / ".tmp-unpackingnow"
    fresh.mkdir()  # another slot is unpacking into it right now
    old.unlink()  # BOINC deleted the old app version's files
    [new_tree] = layers.activate([str(new)], after="x")
    assert not os.path.exists(old_tree)
    assert trees(tmp_path) == sorted([os.path.basename(new_tree), fresh.name])
    assert not stale.exists() and fresh.exists()
    assert not (tmp_path / CACHE / f"{old.name}.sha256").exists()


@pytest.mark.usefixtures("compiled_binding")
def test_a_start_without_layers_sweeps_the_trees_of_removed_app_versions(tmp_path, clean_sys_path):
    """BOINC removed the last app version with a layer: a layer-free task cleans up."""
    project = tmp_path / "projects" / "example"
    project.mkdir(parents=True)
    gone = make_layer(project / "1.00_layered-1.0.zip")
    [tree] = layers.activate([str(gone)], after="x")
    gone.unlink()
    with zipfile.ZipFile(project / "1.00_python311.zip", "w"):
        pass
    slot = tmp_path / "slot"
    slot.mkdir()
    (slot / "stdlib.zip").write_text(
        "<soft_link>../projects/example/1.00_python311.zip</soft_link>\n"
    )
    (slot / "task.py").write_text("")
    (slot / "in").write_text("")
    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert not os.path.exists(tree)
    assert os.listdir(project / CACHE) == []


def test_several_slots_starting_at_once_share_one_tree(tmp_path):
    layer = make_layer(
        tmp_path / "layer.zip", extra=[(f"layered/m{i}.py", "x = 1\n" * 2000) for i in range(200)]
    )
    probe = (
        "import sys; from pyboinc import layers; "
        f"tree, = layers.activate([{str(layer)!r}], after='x'); "
        "import layered.m199; print(tree)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    starts = [
        subprocess.Popen([sys.executable, "-c", probe], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120)[0].strip() for process in starts]
    assert [process.returncode for process in starts] == [0] * 6
    assert len(set(outputs)) == 1
    names = [p.name for p in (tmp_path / CACHE).iterdir()]
    assert sorted(names) == sorted([os.path.basename(outputs[0]), "layer.zip.sha256"])


def test_an_unsafe_layer_is_refused_and_leaves_nothing(tmp_path, clean_sys_path):
    layer = make_layer(tmp_path / "evil.zip", extra=[("../escaped.py", "")])
    with pytest.raises(layers.LayerError, match=r"layer evil\.zip refused: .*escapes"):
        layers.activate([str(layer)], after="x")
    assert trees(tmp_path) == []
    assert not (tmp_path / "escaped.py").exists()


def test_a_refusing_check_runs_before_anything_is_unpacked(tmp_path, clean_sys_path):
    layer = make_layer(tmp_path / "layer.zip")

    class Refused(Exception):
        pass

    def refuse(path):
        raise Refused(f"not built with {os.path.basename(path)}")

    saved = list(sys.path)
    with pytest.raises(Refused, match=r"layer\.zip"):
        layers.activate([str(layer)], after="x", check=refuse)
    assert sys.path == saved and trees(tmp_path) == []
    assert not (tmp_path / CACHE / "layer.zip.sha256").exists()


def test_the_stdlib_zip_argument_carries_the_layers():
    argument = layers.zip_argument("1.00_python311.zip", ["1.00_numpy-2.2.6_cp311.zip"])
    assert argument == "1.00_python311.zip,1.00_numpy-2.2.6_cp311.zip"
    assert layers.split_zip_argument(argument) == (
        "1.00_python311.zip",
        ["1.00_numpy-2.2.6_cp311.zip"],
    )
    assert layers.split_zip_argument("1.00_python311.zip") == ("1.00_python311.zip", [])
    with pytest.raises(ValueError, match="contains ','"):
        layers.zip_argument("/home/a,b/1.00_python311.zip")


@pytest.mark.usefixtures("compiled_binding")
def test_the_runtime_imports_from_a_layer_named_by_a_soft_link(tmp_path):
    project = tmp_path / "projects" / "example"
    project.mkdir(parents=True)
    make_layer(project / "1.00_layered-1.0_cp311_x86_64-pc-linux-gnu.zip", value=42)
    slot = tmp_path / "slots" / "0"
    slot.mkdir(parents=True)
    (slot / "layer.zip").write_text(
        "<soft_link>../../projects/example/1.00_layered-1.0_cp311_x86_64-pc-linux-gnu.zip"
        "</soft_link>\n"
    )
    with zipfile.ZipFile(slot / "stdlib.zip", "w"):
        pass
    (slot / "task.py").write_text(
        "import sys, json, layered\n"
        "json.dump({'value': layered.VALUE, 'file': layered.__file__}, open(sys.argv[2], 'w'))\n"
    )
    (slot / "in").write_text("")
    result = run_worker(slot, "task.py", "stdlib.zip,layer.zip", "in", "out")
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    output = json.loads((slot / "out").read_text())
    assert output["value"] == 42
    assert os.path.realpath(output["file"]).startswith(str(project / CACHE))  # beside the zip


@pytest.mark.usefixtures("compiled_binding")
def test_the_runtime_names_a_missing_layer_in_one_line(tmp_path):
    with zipfile.ZipFile(tmp_path / "stdlib.zip", "w"):
        pass
    (tmp_path / "task.py").write_text("")
    (tmp_path / "in").write_text("")
    result = run_worker(tmp_path, "task.py", "stdlib.zip,gone.zip", "in", "out")
    assert result.returncode == 2
    lines = (tmp_path / "stderr.txt").read_text().splitlines()
    assert "pymw worker: no layer gone.zip (resolved to gone.zip)" in lines


@pytest.mark.usefixtures("compiled_binding")
def test_the_runtime_refuses_a_corrupt_layer_with_exit_3(tmp_path):
    with zipfile.ZipFile(tmp_path / "stdlib.zip", "w"):
        pass
    (tmp_path / "layer.zip").write_bytes(b"not a zip at all")
    (tmp_path / "task.py").write_text("")
    (tmp_path / "in").write_text("")
    result = run_worker(tmp_path, "task.py", "stdlib.zip,layer.zip", "in", "out")
    assert result.returncode == 3
    [line] = [x for x in (tmp_path / "stderr.txt").read_text().splitlines() if "pymw" in x]
    assert line.startswith("pymw worker: layer layer.zip refused: ")
    assert "not a readable zip" in line
    assert trees(tmp_path) == []


@pytest.mark.usefixtures("compiled_binding")
def test_a_signing_worker_takes_only_the_layers_it_was_built_with(tmp_path, capsys, clean_sys_path):
    import hashlib

    from pyboinc import contract, runtime, verify

    layer = make_layer(tmp_path / "1.00_layered-1.0_cp311_x86_64-pc-linux-gnu.zip")
    built = {layer.name: hashlib.sha256(layer.read_bytes()).hexdigest(), "stdlib.zip": "0" * 64}
    trusted = verify.Trust(b"\0" * 32, built, "stdlib.zip")
    assert runtime.add_layers([str(layer)], "stdlib.zip", trusted) == contract.EXIT_OK
    assert len(trees(tmp_path)) == 1

    make_layer(layer, value=666)  # same name, other content
    assert runtime.add_layers([str(layer)], "stdlib.zip", trusted) == contract.EXIT_SCRIPT_REFUSED
    stranger = make_layer(tmp_path / "other.zip")
    assert (
        runtime.add_layers([str(stranger)], "stdlib.zip", trusted) == contract.EXIT_SCRIPT_REFUSED
    )
    refusals = capsys.readouterr().err.splitlines()
    assert refusals[0].startswith("pymw worker: refusing a layer: its content is not the ")
    assert "built without a file other.zip" in refusals[1]
    assert len(trees(tmp_path)) == 1  # neither was unpacked
