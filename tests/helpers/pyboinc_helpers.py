"""Helpers for the PyBOINC tests: fresh-process runs and slot files."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
INIT_DATA = REPO_ROOT / "tests" / "data" / "boinc_reference" / "init_data.xml"


def run_python(code: str, cwd: Path, *args, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run Python code in a fresh process (boinc_init redirects fd 2; finish exits)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_worker(slot: Path, *names: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the worker runtime (`python -m pyboinc NAMES`) in `slot`, as the client would."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pyboinc", *names],
        cwd=slot,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def copy_init_data(slot: Path) -> None:
    source = INIT_DATA if INIT_DATA.exists() else Path("/work/shared/boinc-reference/init_data.xml")
    if not source.exists():
        pytest.skip("no reference init_data.xml")
    shutil.copy(source, slot / "init_data.xml")


def plant_trap_modules(folder: Path, names) -> None:
    """A module file for each of `names` in `folder` which, if imported, says so on stderr
    (stderr.txt in a slot, which BOINC reports) and exits 66."""
    for name in names:
        (folder / f"{name}.py").write_text(
            f"import sys\nsys.stderr.write('TRAP {name} RAN\\n')\nraise SystemExit(66)\n"
        )


def modules_a_worker_may_import() -> list[str]:
    """Every top-level module a task run may import lazily: what this process has loaded
    with the runtime and a task's unpacking, and the optional ones safe_extract tries."""
    import runpy  # noqa: F401
    import tempfile  # noqa: F401
    import traceback  # noqa: F401

    from pyboinc import runtime  # noqa: F401

    names = {name.partition(".")[0] for name in sys.modules}
    names |= {"zipfile_deflate64", "inflate64", "boinc", "cffi", "_cffi_backend"}
    # `python -m pyboinc` finds pyboinc itself on sys.path before any of its code runs, the
    # slot first: only `python -P -m` (or the frozen worker) is safe from that one.
    names -= {"__main__", "pyboinc"}
    return sorted(name for name in names if name.isidentifier())
