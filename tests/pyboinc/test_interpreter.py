"""`pyboinc.interpreter`: the worker acting as python for a task's children.

Run in a fresh interpreter each time, as the frozen worker's children are; the frozen
cases (multiprocessing, SIGKILL, chroots) are in tests/build/test_worker_build.py.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyboinc import interpreter

REPO_ROOT = Path(__file__).resolve().parents[2]


def as_python(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    driver = "import sys; from pyboinc import interpreter; sys.exit(interpreter.run(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", driver, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )


@pytest.mark.parametrize(
    "argv, rest",
    [
        (["-c", "pass", "x"], ["-c", "pass", "x"]),
        (["-B", "-s", "-c", "pass"], ["-c", "pass"]),  # _args_from_interpreter_flags()
        (["-W", "ignore", "-X", "utf8", "-sB", "script.py"], ["script.py"]),
        (["-Wignore", "-m", "json.tool"], ["-m", "json.tool"]),
        (["--multiprocessing-fork", "pipe_handle=5"], ["--multiprocessing-fork", "pipe_handle=5"]),
    ],
)
def test_python_options_are_skipped(argv, rest):
    assert interpreter._split_options(argv) == rest


def test_dash_c_sees_its_arguments_and_runs_as_main(tmp_path):
    code = "import json, sys; print(json.dumps([sys.argv, __name__, '__file__' in globals()]))"
    result = as_python(["-s", "-c", code, "a", "b"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [["-c", "a", "b"], "__main__", False]


def test_a_script_runs_as_main_with_its_folder_on_sys_path(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    (tmp_path / "main.py").write_text(
        "import json, sys, helper\n"
        "print(json.dumps([sys.argv, __name__, __file__, helper.VALUE]))\n"
        "sys.exit(3)\n"
    )
    result = as_python(["main.py", "x"], tmp_path)
    assert result.returncode == 3, result.stderr
    assert json.loads(result.stdout) == [["main.py", "x"], "__main__", "main.py", 42]


def test_dash_m_runs_a_module(tmp_path):
    (tmp_path / "data.json").write_text('{"b": 1, "a": 2}')
    result = as_python(["-m", "json.tool", "--sort-keys", "data.json"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["{", '"a":', "2,", '"b":', "1", "}"]


def test_no_command_is_one_line_and_status_2(tmp_path):
    result = as_python(["-B"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "pymw worker: as sys.executable it runs -c CODE, -m MODULE or a script, no prompt"
    )


def test_only_a_frozen_worker_takes_the_child_role(monkeypatch):
    """`python -m pyboinc` under a real python never acts as a child, even if marked."""
    monkeypatch.setenv(interpreter.CHILD_PATH_VARIABLE, "/nowhere.zip")
    assert not interpreter.is_child()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert interpreter.is_child()
