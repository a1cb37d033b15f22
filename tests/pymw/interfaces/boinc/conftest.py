"""Fixtures for the BOINC interface: sandbox projects standing in for a BOINC server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pymw.testing.boinc_sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    """A new sandbox project with its HTTP side and daemons running (no client yet)."""
    box = Sandbox.open(tmp_path / "project")
    box.start()
    try:
        yield box
    finally:
        box.stop()


@pytest.fixture
def stopped_sandbox(tmp_path: Path) -> Sandbox:
    """A sandbox project directory with nothing running."""
    return Sandbox.open(tmp_path / "project")
