"""User errors of pymw-boinc-sandbox: one line, exit status 2, no traceback."""

from __future__ import annotations

import pytest

from pymw.testing.boinc_sandbox.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus", "--dir", "x"],
        ["status"],
        ["status", "--dir", "{tmp}/none"],
        ["stop", "--dir", "{tmp}"],
        ["start", "--dir", "{tmp}/d", "--clients", "-1"],
    ],
)
def test_user_errors(argv, tmp_path, capsys):
    (tmp_path / "junk").write_text("not a project")
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pymw-boinc-sandbox: ") and err.count("\n") == 1
    assert "Traceback" not in err
