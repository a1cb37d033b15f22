"""The worker runtime under a plain Python (`python -m pyboinc`), as the frozen exe runs it."""

import zipfile

import pytest
from pyboinc_helpers import run_worker

pytestmark = pytest.mark.usefixtures("compiled_binding")

TASK = """
import sys, json, boinc
source, target = sys.argv[1], sys.argv[2]
with open(source) as handle:
    text = handle.read()
with open(target, "w") as handle:
    handle.write(json.dumps({"upper": text.upper(), "argv0": sys.argv[0],
                             "path0": sys.path[0], "standalone": boinc.is_standalone()}))
"""


@pytest.fixture
def slot(tmp_path):
    with zipfile.ZipFile(tmp_path / "stdlib.zip", "w"):
        pass
    (tmp_path / "task.py").write_text(TASK)
    (tmp_path / "in").write_text("hello")
    return tmp_path


def test_runs_the_script_with_resolved_arguments(slot):
    import json

    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    output = json.loads((slot / "out").read_text())
    assert output["upper"] == "HELLO"
    assert output["argv0"] == "task.py"
    assert output["path0"] == str(slot / "stdlib.zip")  # the zip comes first
    assert output["standalone"] is True
    assert (slot / "boinc_finish_called").read_text().strip() == "0"


def test_soft_link_files_point_elsewhere(slot):
    project = slot / "projects" / "example"
    project.mkdir(parents=True)
    for physical, logical in (
        ("task_v1.py", "task.py"),
        ("stdlib_v1.zip", "stdlib.zip"),
        ("wu_in", "in"),
    ):
        (slot / logical).rename(project / physical)
        (slot / logical).write_text(f"<soft_link>projects/example/{physical}</soft_link>\n")
    (slot / "out").write_text("<soft_link>projects/example/result_out</soft_link>\n")
    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 0, (slot / "stderr.txt").read_text()
    assert '"upper": "HELLO"' in (project / "result_out").read_text()
    assert (slot / "out").read_text().startswith("<soft_link>")


def test_exit_status_comes_from_system_exit(slot):
    (slot / "task.py").write_text("import boinc, sys\nsys.exit(5)\n")
    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 5
    assert (slot / "boinc_finish_called").read_text().strip() == "5"


def test_script_calling_finish_itself(slot):
    (slot / "task.py").write_text("import boinc\nboinc.finish(3)\n")
    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 3
    assert (slot / "boinc_finish_called").read_text().strip() == "3"


def test_uncaught_exception_exits_1_with_traceback_in_stderr_txt(slot):
    (slot / "task.py").write_text("def broken():\n    raise ValueError('no luck')\nbroken()\n")
    result = run_worker(slot, "task.py", "stdlib.zip", "in", "out")
    assert result.returncode == 1
    stderr_txt = (slot / "stderr.txt").read_text()
    assert "Traceback" in stderr_txt and "ValueError: no luck" in stderr_txt


def test_bad_invocation_exits_2(slot):
    result = run_worker(slot, "task.py", "in", "out")
    assert result.returncode == 2
    assert "expected <script> <stdlib zip> <input> <output>" in (slot / "stderr.txt").read_text()


def test_unpack_archive_resolves_and_extracts_safely(tmp_path, monkeypatch):
    from pyboinc import contract, runtime

    with zipfile.ZipFile(tmp_path / "data.zip", "w") as archive:
        archive.writestr("tree/a.txt", "a")
    (tmp_path / "data").write_text("<soft_link>data.zip</soft_link>")
    monkeypatch.chdir(tmp_path)
    assert runtime.unpack_archive("data", "unpacked") == ["tree/a.txt"]
    assert (tmp_path / "unpacked" / "tree" / "a.txt").read_text() == "a"
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as archive:
        archive.writestr("../escape.txt", "x")
    with pytest.raises(contract.UnsafeArchiveError):
        runtime.unpack_archive("evil.zip", "unpacked")
