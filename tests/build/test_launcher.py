"""The portable worker's launcher (build/launcher/pyboinc_launcher.c), on a small payload.

The payload's program here is a copy of the host's `/bin/echo` with the interpreter
placeholder, its loader the host's: the launcher's own work (unpack once, patch PT_INTERP,
exec, sweep) is what is checked, in about a second, without freezing Python.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from pyboinc_build.platforms import linux

pytestmark = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in linux.TOOLS) or not Path("/bin/echo").exists(),
    reason=f"needs {', '.join(linux.TOOLS)} and /bin/echo",
)
NAME = "pymw_9.99_x86_64-pc-linux-gnu"


def make_tree(tree: Path) -> Path:
    (tree / linux.GLIBC_DIR).mkdir(parents=True)
    program = tree / linux.PROGRAM
    shutil.copy2("/bin/echo", program)
    interpreter = subprocess.run(
        ["patchelf", "--print-interpreter", str(program)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy2(Path(interpreter).resolve(), tree / linux.LOADER)
    subprocess.run(
        ["patchelf", "--set-interpreter", linux.INTERPRETER_PLACEHOLDER, str(program)], check=True
    )
    (tree / "_internal").mkdir()
    (tree / "_internal" / "data.txt").write_text("payload data\n")
    return tree


@pytest.fixture(scope="module")
def launcher_file(tmp_path_factory) -> Path:
    scratch = tmp_path_factory.mktemp("launcher")
    launcher = linux.compile_launcher(scratch / "launcher")
    payload = linux.payload_tar(make_tree(scratch / "tree"))
    out = scratch / NAME
    out.write_bytes(linux.join_launcher(launcher.read_bytes(), payload))
    out.chmod(0o755)
    return out


@pytest.fixture
def project(launcher_file, tmp_path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(launcher_file, project / NAME)
    return project


def run(project: Path, *args: str, cwd: Path | None = None, **options):
    return subprocess.run(
        [str(project / NAME), *args],
        cwd=cwd or project,
        capture_output=True,
        text=True,
        timeout=30,
        **options,
    )


def entries(project: Path) -> list[str]:
    return sorted(p.name for p in (project / "pyboinc-cache").iterdir())


def test_runs_the_payloads_program_with_the_arguments(project):
    result = run(project, "hello", "world")
    assert (result.returncode, result.stdout) == (0, "hello world\n"), result.stderr
    [key] = entries(project)
    entry = project / "pyboinc-cache" / key
    assert (entry / "_internal" / "data.txt").read_text() == "payload data\n"
    assert (entry / ".owner").read_text() == NAME
    assert os.access(entry / linux.PROGRAM, os.X_OK)


def test_the_second_start_only_execs(project):
    run(project, "first")
    [key] = entries(project)
    program = project / "pyboinc-cache" / key / linux.PROGRAM
    before = program.stat()
    time.sleep(0.01)
    assert run(project, "second").stdout == "second\n"
    assert entries(project) == [key]
    assert (program.stat().st_ino, program.stat().st_mtime_ns) == (
        before.st_ino,
        before.st_mtime_ns,
    )


def test_a_broken_entry_without_its_marker_is_unpacked_again(project):
    run(project, "x")
    [key] = entries(project)
    (project / "pyboinc-cache" / key / ".complete").unlink()
    (project / "pyboinc-cache" / key / linux.PROGRAM).write_text("broken")
    assert run(project, "again").stdout == "again\n"


def test_many_first_starts_at_once_make_one_entry(project):
    started = [
        subprocess.Popen([str(project / NAME), str(i)], stdout=subprocess.PIPE, text=True)
        for i in range(8)
    ]
    outputs = [process.communicate(timeout=30)[0] for process in started]
    assert outputs == [f"{i}\n" for i in range(8)]
    assert len(entries(project)) == 1  # and no .tmp-<pid> left


def test_sweeps_entries_whose_program_is_gone(project):
    cache = project / "pyboinc-cache"
    for key, owner in (("a" * 32, "pymw_9.98_gone"), ("b" * 32, NAME)):
        (cache / key).mkdir(parents=True)
        (cache / key / ".owner").write_text(owner)
    (cache / ".tmp-999999999").mkdir()
    run(project, "x")
    assert "a" * 32 not in entries(project) and ".tmp-999999999" not in entries(project)
    assert "b" * 32 in entries(project)


def test_a_file_without_payload_is_one_line_and_status_3(tmp_path):
    bare = linux.compile_launcher(tmp_path / "bare")
    result = subprocess.run([str(bare)], capture_output=True, text=True)
    assert result.returncode == 3
    assert result.stderr == f"bare: no payload in this file ({bare})\n"


def test_the_payload_has_the_same_bytes_whatever_the_files_dates(tmp_path):
    tree = make_tree(tmp_path / "tree")
    first = linux.payload_tar(tree)
    for path in tree.rglob("*"):
        os.utime(path, (1, 1))
    assert linux.payload_tar(tree) == first
