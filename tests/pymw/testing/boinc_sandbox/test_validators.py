"""script_validator with the real command line, and the real validator framework:
canonical result by min_quorum/2+1 matches, losers invalid, more results without a
consensus up to max_total_results, transient errors retried later."""

from __future__ import annotations

import shlex
import time

import pytest
from conftest import APP

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import Outcome, ServerState, ValidateState, WuError
from pymw.testing.boinc_sandbox.daemons import transitioner, validators
from pymw.testing.boinc_sandbox.daemons.common import DaemonExit, Options, parse_options
from pymw.testing.boinc_sandbox.jobs import output_files

#: Compare script: equal first lines match; "flaky" in either means try again later.
COMPARE = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/compare.log"
a=$(head -n1 "$1"); b=$(head -n1 "$2")
[ "$a" = flaky ] || [ "$b" = flaky ] && exit 3
[ "$a" = "$b" ]
"""
#: Init script taking keywords: files then result_id; "garbage" is not a valid output.
INIT = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/init.log"
! grep -q garbage "$1"
"""


def _install(sandbox: Sandbox, name: str, text: str) -> None:
    path = sandbox.project.bin_dir / name
    path.write_text(text)
    path.chmod(0o755)


def _validator(sandbox: Sandbox, *args: str):
    options = parse_options("script_validator", ["--app", APP, *args], validators.SCRIPT_OPTIONS)
    return validators.make_setup("script_validator", validators.script_checks)(
        sandbox.project, options
    )


def _workunit(sandbox: Sandbox, tmp_path, *options: str) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x")
    sandbox.run_tool("stage_file", str(source))
    sandbox.run_tool("create_work", "--appname", APP, "--wu_name", "wu", *options, "in.txt")
    _transition(sandbox)


def _transition(sandbox: Sandbox) -> None:
    with sandbox.project.connect() as database:
        database.execute("UPDATE workunit SET transition_time = 0")
        transitioner.setup(sandbox.project, Options())(database)


def _report(sandbox: Sandbox, outputs: list[str]) -> None:
    """The unsent results come back successful with these outputs, in order."""
    project = sandbox.project
    with project.connect() as database:
        rows = database.all("SELECT * FROM result WHERE server_state = ? ORDER BY id", 2)
        assert len(rows) == len(outputs)
        for row, text in zip(rows, outputs, strict=True):
            (out,) = output_files(project, row["xml_doc_in"])
            project.upload_path(out.name).write_text(text + "\n")
            database.update(
                "result",
                row["id"],
                server_state=ServerState.OVER,
                outcome=Outcome.SUCCESS,
                received_time=int(time.time()),
                elapsed_time=12.5,
            )
    _transition(sandbox)


def _validate(sandbox: Sandbox, one_pass) -> tuple[dict, dict[str, int]]:
    with sandbox.project.connect() as database:
        one_pass(database)
        wu = dict(database.one("SELECT * FROM workunit WHERE name = 'wu'"))
        states = {r["name"]: r["validate_state"] for r in database.all("SELECT * FROM result")}
    return wu, states


def test_the_agreeing_results_win_and_the_odd_one_is_invalid(app_sandbox, tmp_path):
    _install(app_sandbox, "cmp", COMPARE)
    _workunit(app_sandbox, tmp_path, "--min_quorum", "2", "--target_nresults", "3")
    _report(app_sandbox, ["41", "42", "42"])
    wu, states = _validate(app_sandbox, _validator(app_sandbox, "--compare_script", "cmp"))
    assert states == {
        "wu_0": ValidateState.INVALID,
        "wu_1": ValidateState.VALID,
        "wu_2": ValidateState.VALID,
    }
    with app_sandbox.project.connect() as database:
        canonical = database.one("SELECT name FROM result WHERE id = ?", wu["canonical_resultid"])
    assert canonical["name"] == "wu_1" and wu["assimilate_state"] == 1
    # A bare NAME is `NAME files files2`: two output paths per call.
    calls = (app_sandbox.project.bin_dir / "compare.log").read_text().splitlines()
    assert all(len(shlex.split(c)) == 2 and "/upload/" in c for c in calls)


def test_no_consensus_asks_for_more_results_until_max_total_results(app_sandbox, tmp_path):
    _install(app_sandbox, "cmp", COMPARE)
    _workunit(
        app_sandbox,
        tmp_path,
        *("--min_quorum", "2", "--target_nresults", "2", "--max_total_results", "3"),
    )
    one_pass = _validator(app_sandbox, "--compare_script", "cmp files files2")
    _report(app_sandbox, ["1", "2"])
    wu, states = _validate(app_sandbox, one_pass)
    assert wu["canonical_resultid"] == 0 and wu["target_nresults"] == 3
    assert set(states.values()) == {ValidateState.INCONCLUSIVE}
    _transition(app_sandbox)  # sends a third copy
    _report(app_sandbox, ["3"])
    wu, states = _validate(app_sandbox, one_pass)
    assert wu["canonical_resultid"] == 0 and wu["target_nresults"] == 4
    _transition(app_sandbox)  # a fourth would exceed max_total_results
    with app_sandbox.project.connect() as database:
        wu = database.one("SELECT * FROM workunit WHERE name = 'wu'")
    assert wu["error_mask"] & WuError.TOO_MANY_TOTAL_RESULTS


def test_exit_status_3_validates_again_later(app_sandbox, tmp_path):
    _install(app_sandbox, "cmp", COMPARE)
    _workunit(app_sandbox, tmp_path, "--min_quorum", "2", "--target_nresults", "2")
    _report(app_sandbox, ["flaky", "flaky"])
    wu, states = _validate(app_sandbox, _validator(app_sandbox, "--compare_script", "cmp"))
    assert wu["canonical_resultid"] == 0 and wu["need_validate"] == 0
    assert wu["target_nresults"] == 2  # not a disagreement: nothing more is sent
    assert wu["transition_time"] > time.time() + 5 * 3600
    assert set(states.values()) == {ValidateState.INIT}


def test_init_script_keywords_and_invalid_output(app_sandbox, tmp_path):
    _install(app_sandbox, "check", INIT)
    _workunit(app_sandbox, tmp_path, "--min_quorum", "1", "--target_nresults", "2")
    _report(app_sandbox, ["garbage", "good"])
    one_pass = _validator(app_sandbox, "--init_script", "check files result_id runtime bogus")
    wu, states = _validate(app_sandbox, one_pass)
    with app_sandbox.project.connect() as database:
        rows = {r["name"]: r for r in database.all("SELECT * FROM result")}
    assert rows["wu_0"]["outcome"] == Outcome.VALIDATE_ERROR
    assert states["wu_1"] == ValidateState.VALID and wu["canonical_resultid"] == rows["wu_1"]["id"]
    calls = (app_sandbox.project.bin_dir / "init.log").read_text().splitlines()
    path, result_id, runtime = calls[-1].split()  # "bogus" is no keyword: dropped
    assert "/upload/" in path and result_id == str(rows["wu_1"]["id"])
    assert runtime == "12.500000"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "command line must specify init_script or compare_script"),
        (("--frobnicate", "1"), "unknown option"),
    ],
)
def test_command_line_errors_stop_it(app_sandbox, args, message):
    run = app_sandbox.run_tool("script_validator", "--app", APP, *args, check=False)
    assert run.returncode != 0 and message in run.stdout
    with pytest.raises(DaemonExit, match=message):
        options = parse_options(
            "script_validator", ["--app", APP, *args], validators.SCRIPT_OPTIONS
        )
        validators.script_checks(app_sandbox.project, options)
