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


def copy_init_data(slot: Path) -> None:
    source = INIT_DATA if INIT_DATA.exists() else Path("/work/shared/boinc-reference/init_data.xml")
    if not source.exists():
        pytest.skip("no reference init_data.xml")
    shutil.copy(source, slot / "init_data.xml")
