"""Fixtures for the BOINC sandbox tests: projects, a test app, running sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pymw.testing.boinc_sandbox import Sandbox, reachable_temp_dir
from pymw.testing.boinc_sandbox.constants import PLATFORM
from pymw.testing.boinc_sandbox.layout import Project, make_project
from pymw.testing.boinc_sandbox.processes import free_port

REFERENCE = Path(__file__).resolve().parents[3] / "data" / "boinc_reference"
APP = "upcase"
EXECUTABLE = f"{APP}_1.0_{PLATFORM}"
#: A shell-script main program: a script must write boinc_finish_called itself.
APP_SCRIPT = """#!/bin/sh
case "$1" in
  fail) echo "failing on purpose" >&2; exit 7;;
  big) head -c 5000 /dev/zero > out;;
  *) tr a-z A-Z < in > out;;
esac
echo 0 > boinc_finish_called
exit 0
"""
VERSION_XML = f"""<version>
    <file>
        <physical_name>{EXECUTABLE}</physical_name>
        <main_program/>
    </file>
    <api_version>7.20.5</api_version>
</version>
"""
INPUT_TEMPLATE = (REFERENCE / "template_in.xml").read_text()
#: The reference output template with a 1000-byte limit, so "big" exceeds it.
OUTPUT_TEMPLATE = (REFERENCE / "template_out.xml").read_text().replace("5000000", "1000")
#: Assimilator script: records its arguments and the outputs' contents.
ASSIMILATOR = """#!/bin/sh
echo "ARGS $*" >> "{log}"
for f in "$@"; do [ -f "$f" ] && cat "$f" >> "{log}"; done
exit 0
"""


@pytest.fixture
def reference() -> Path:
    return REFERENCE


@pytest.fixture
def base_dir() -> Iterator[Path]:
    """Where projects go: a directory the web user can reach (pytest's tmp_path has a
    0700 parent, which a web side running as another user cannot enter)."""
    with reachable_temp_dir() as directory:
        yield directory


@pytest.fixture
def project(base_dir: Path) -> Project:
    """A fresh project directory; nothing running."""
    return make_project(base_dir / "proj", port=free_port())


def write_app(directory: Path) -> Path:
    path = directory / EXECUTABLE
    path.write_text(APP_SCRIPT)
    path.chmod(0o755)
    return path


def add_test_app(sandbox: Sandbox, directory: Path, assimilator: str) -> None:
    """Install the test app with its templates, a trivial validator and `assimilator`."""
    sandbox.add_app(
        APP,
        [write_app(directory)],
        version_xml=VERSION_XML,
        daemons=(f"sample_trivial_validator -d 3 --app {APP}", assimilator),
        templates=(INPUT_TEMPLATE, OUTPUT_TEMPLATE),
    )


@pytest.fixture
def app_sandbox(base_dir: Path, tmp_path: Path) -> Sandbox:
    """A sandbox with the test app, its templates and a script assimilator (not running)."""
    sandbox = Sandbox.open(base_dir / "proj")
    log = tmp_path / "assimilated.log"
    script = sandbox.project.bin_dir / "record_assim"
    script.write_text(ASSIMILATOR.format(log=log))
    script.chmod(0o755)
    add_test_app(sandbox, tmp_path, f"script_assimilator -d 3 --app {APP} --script record_assim")
    return sandbox


@pytest.fixture
def remote_sandbox(base_dir: Path, tmp_path: Path) -> Sandbox:
    """A sandbox with the test app and sample_assimilator, whose moved outputs
    get_output3.php serves (not running)."""
    sandbox = Sandbox.open(base_dir / "proj")
    add_test_app(sandbox, tmp_path, f"sample_assimilator -d 3 --app {APP}")
    return sandbox


@pytest.fixture
def running(app_sandbox: Sandbox) -> Iterator[Sandbox]:
    """app_sandbox with its HTTP side and daemons running; everything stopped after."""
    try:
        app_sandbox.start()
        yield app_sandbox
    finally:
        app_sandbox.stop()
