"""Fixtures for the BOINC interface: sandbox projects standing in for a BOINC server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pymw.testing.boinc_sandbox import Sandbox, Volunteer, reachable_temp_dir

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def project_base() -> Iterator[Path]:
    """A directory for sandbox projects that the sandbox's web user can enter (pytest's
    tmp_path is below a 0700 directory, which a web side of its own user cannot)."""
    with reachable_temp_dir() as directory:
        yield directory


@pytest.fixture
def sandbox(project_base: Path) -> Iterator[Sandbox]:
    """A new sandbox project with its HTTP side and daemons running (no client yet)."""
    box = Sandbox.open(project_base / "project")
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def stopped_sandbox(project_base: Path) -> Sandbox:
    """A sandbox project directory with nothing running."""
    return Sandbox.open(project_base / "project")


@pytest.fixture
def volunteer(sandbox: Sandbox) -> Iterator[Volunteer]:
    """Tells every running client of `sandbox` to update every few seconds.

    The sandbox reports lazily, like a real server: a client that stays up (added with
    exit_when_idle=False) reports finished tasks and asks for new ones only when it
    updates. Real volunteers' clients do that on their own schedule; a test asks for
    this fixture instead of waiting minutes.
    """
    with Volunteer(sandbox) as running:
        yield running
