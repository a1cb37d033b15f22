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


@pytest.fixture(scope="session")
def pyboinc_numpy_dist(pyboinc_dist, tmp_path_factory) -> Path:
    """The session's worker plus a numpy layer (`--layers-only --with numpy==2.2.6`): one
    download and one zip per session, in a copy, so the other tests keep the bare worker."""
    import shutil

    from pyboinc_build import main

    out = tmp_path_factory.mktemp("dist-numpy")
    shutil.copytree(pyboinc_dist / "linux", out / "linux", symlinks=True)
    args = ["--out", str(out), "--layers-only", "--with", "numpy==2.2.6"]
    assert main.main(args) == 0
    return out


@pytest.fixture(scope="session")
def pyboinc_signing_dist(tmp_path_factory) -> tuple[Path, Path]:
    """A worker built with --signing-public-key, once per session (not portable: staticx
    does not touch what is checked with it): (the `-c` directory, the private key)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("builds the Linux worker")
    sys.path.insert(0, str(ROOT / "build"))
    from pyboinc_build import main

    from pymw.signing import write_key_pair

    private_path, public_path = write_key_pair(tmp_path_factory.mktemp("keys"))
    out = tmp_path_factory.mktemp("signing-dist")
    work = tmp_path_factory.mktemp("signing-work")
    args = ["--out", str(out), "--work-dir", str(work), "--no-portable"]
    assert main.main([*args, "--signing-public-key", str(public_path)]) == 0
    return out, private_path
