"""bin/create_work's command line."""

from __future__ import annotations

import pytest
from conftest import APP

from pymw.testing.boinc_sandbox.create_work import JOB_OPTIONS, UsageError, parse_args


def test_parse_args_single_and_double_dash():
    spec = parse_args(
        [
            "-appname",
            "a",
            "--wu_name",
            "w",
            "--target_nresults",
            "2",
            "--rsc_fpops_est",
            "1e9",
            "--remote_file",
            "http://x/f",
            "10",
            "abc",
            "f1",
            "f2",
            "--stdin",
        ]
    )
    assert spec.options == {
        "appname": "a",
        "wu_name": "w",
        "target_nresults": "2",
        "rsc_fpops_est": "1e9",
    }
    assert spec.files == ["f1", "f2"] and spec.flags == {"stdin"}
    assert spec.remote_files == [("http://x/f", 10, "abc")]


def test_parse_args_refuses_unknown_and_line_only_options():
    with pytest.raises(UsageError, match="unknown option --bogus"):
        parse_args(["--bogus", "1"])
    with pytest.raises(UsageError, match="unknown option --appname"):
        parse_args(["--appname", "a"], allowed=JOB_OPTIONS)


def test_create_work_stdin_and_errors(app_sandbox, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("x")
    app_sandbox.run_tool("stage_file", "--copy", str(source))
    assert source.exists()  # --copy leaves it
    lines = "--wu_name a in.txt\n--wu_name b --command_line 'fail now' in.txt\n"
    app_sandbox.run_tool("create_work", "--appname", APP, "--batch", "7", "--stdin", stdin=lines)
    with app_sandbox.project.connect() as database:
        rows = {r["name"]: r for r in database.all("SELECT * FROM workunit")}
    assert set(rows) == {"a", "b"} and rows["a"]["batch"] == 7
    assert "fail now" in rows["b"]["xml_doc"]
    assert rows["a"]["result_template_file"] == f"templates/{APP}_out"
    missing = app_sandbox.run_tool("create_work", "--appname", APP, "nope.txt", check=False)
    assert missing.returncode != 0 and "not staged" in missing.stderr
    duplicate = app_sandbox.run_tool(
        "create_work", "--appname", APP, "--wu_name", "a", "in.txt", check=False
    )
    assert duplicate.returncode != 0
