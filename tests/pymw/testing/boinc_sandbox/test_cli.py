"""User errors of pymw-boinc-sandbox: one line, exit status 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pymw.testing.boinc_sandbox.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus", "--dir", "x"],
        ["status"],
        ["status", "--dir", "{tmp}/none"],
        ["stop", "--dir", "{tmp}"],
        ["update", "--dir", "{tmp}/none"],
        ["start", "--dir", "{tmp}/d", "--clients", "-1"],
    ],
)
def test_user_errors(argv, tmp_path, capsys):
    (tmp_path / "junk").write_text("not a project")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pymw-boinc-sandbox: ") and err.count("\n") == 1
    assert "Traceback" not in err


#: Runs the CLI as if the `boinc` extra were not installed.
WITHOUT_EXTRA = """
import sys
for name in ("cryptography", "requests", "defusedxml"):
    sys.modules[name] = None
from pymw.testing.boinc_sandbox.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("command", ["start", "status"])
def test_without_the_boinc_extra_it_says_what_to_install(command, tmp_path):
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRA, command, "--dir", str(tmp_path / "p")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr == (
        "pymw-boinc-sandbox: the Python module 'cryptography' is missing:"
        " pip install 'pymw[boinc]'\n"
    )
    assert not (tmp_path / "p").exists()
