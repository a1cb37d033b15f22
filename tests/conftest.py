"""Shared fixtures. Task functions used by tests live in `tasks_for_tests.py`, a real file,
because PyMW sends functions as source code."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pyboinc_dist(tmp_path_factory) -> Path:
    """The frozen PyBOINC worker, built once per test session: the `-c` directory."""
    if not sys.platform.startswith("linux"):
        pytest.skip("builds the Linux worker")
    sys.path.insert(0, str(ROOT / "build"))
    from pyboinc_build import main

    out = tmp_path_factory.mktemp("dist")
    work = tmp_path_factory.mktemp("work")
    assert main.main(["--out", str(out), "--work-dir", str(work), "--onedir"]) == 0
    return out
