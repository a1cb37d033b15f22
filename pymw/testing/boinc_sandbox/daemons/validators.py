"""Validators: `sample_trivial_validator`, `sample_bitwise_validator`, `script_validator`.

Stand in for BOINC's validators built from sched/validator.cpp and
sched/validate_util2.cpp with sample_trivial_validator.cpp (every result is valid and
matches), sample_bitwise_validator.cpp (results match when their output files are
identical) and script_validator.cpp (scripts in bin/ decide). The framework is the
real one:

- check_set, for a workunit without a canonical result: each successful result is
  checked (`init`): invalid ones get outcome VALIDATE_ERROR; once at least min_quorum
  are good, the first result that matches at least min_quorum/2+1 of them (itself
  included) becomes canonical, those it matches are VALID, the others INVALID. Without
  such a result, the unmatched ones are INCONCLUSIVE; if the workunit already has
  target_nresults successes, target_nresults becomes their number plus one, so the
  transitioner sends the job again, until max_total_results is reached and the
  workunit ends in error (WU_ERROR_TOO_MANY_TOTAL_RESULTS).
- check_pair, for a result that arrives once there is a canonical result: VALID if it
  matches the canonical one, else INVALID.
- A transient error (a script's exit status 3, VAL_RESULT_TRANSIENT_ERROR) leaves the
  workunit as it is and validates it again 6 hours later.

A result whose output files are missing is invalid before any check.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from sqlite3 import Row

from ..constants import (
    VAL_RESULT_TRANSIENT_ERROR,
    VALIDATE_RETRY_SECONDS,
    AssimilateState,
    Outcome,
    ServerState,
    ValidateState,
    WuError,
)
from ..db import Database
from ..jobs import output_files
from ..layout import Project
from ..signing import md5_file
from .common import DaemonExit, Options, app_id, log, main_for, required
from .transitioner import NEVER


class Verdict(Enum):
    """What an init or compare step says: ok (valid / matching), retry later, or not."""

    OK = "ok"
    TRANSIENT = "transient"
    FAILED = "failed"


@dataclass(frozen=True)
class Checks:
    """A validator's two functions (init_result and compare_results in BOINC)."""

    init: Callable[[Project, Row], Verdict]
    compare: Callable[[Project, Row, Row], Verdict]


def _always(*_args: object) -> Verdict:
    return Verdict.OK


def _output_md5s(project: Project, result: Row) -> tuple[str | None, ...]:
    """md5 of each output; None for one that is gone (an assimilator moved it)."""
    return tuple(
        md5_file(f.path) if f.path.is_file() else None
        for f in output_files(project, result["xml_doc_in"])
    )


def _same_files(project: Project, first: Row, second: Row) -> Verdict:
    digests = _output_md5s(project, first)
    same = None not in digests and digests == _output_md5s(project, second)
    return Verdict.OK if same else Verdict.FAILED


TRIVIAL = Checks(init=_always, compare=_always)
BITWISE = Checks(init=_always, compare=_same_files)


@dataclass
class SetOutcome:
    """What check_set decided about a workunit's results."""

    canonical: Row | None = None
    retry: bool = False


def check_set(
    project: Project, results: list[Row], wu: Row, checks: Checks
) -> tuple[SetOutcome, dict[int, ValidateState], set[int]]:
    """validate_util2.cpp's check_set: new validate states and the invalid results."""
    outcome = SetOutcome()
    states: dict[int, ValidateState] = {}
    invalid: set[int] = set()
    good = []
    for r in results:
        verdict = checks.init(project, r)
        if verdict is Verdict.TRANSIENT:
            log(f"check_set: init_result([RESULT#{r['id']} {r['name']}]) transient failure")
            outcome.retry = True
        elif verdict is Verdict.FAILED:
            log(f"check_set: init_result([RESULT#{r['id']} {r['name']}]) failed")
            invalid.add(r["id"])
        else:
            good.append(r)
    if len(good) < wu["min_quorum"]:
        return outcome, states, invalid
    min_valid = wu["min_quorum"] // 2 + 1
    for r in good:
        matches = {r["id"]}
        for other in good:
            if other["id"] == r["id"]:
                continue
            verdict = checks.compare(project, r, other)
            if verdict is Verdict.TRANSIENT:
                outcome.retry = True
                return outcome, states, invalid
            if verdict is Verdict.OK:
                matches.add(other["id"])
        if len(matches) >= min_valid:
            for other in good:
                matched = other["id"] in matches
                states[other["id"]] = ValidateState.VALID if matched else ValidateState.INVALID
            outcome.canonical = r
            break
    return outcome, states, invalid


def check_pair(project: Project, result: Row, canonical: Row, checks: Checks) -> Verdict | None:
    """A straggler against the canonical result: OK (valid), FAILED (invalid), TRANSIENT,
    or None when its own output is invalid."""
    first = checks.init(project, result)
    if first is not Verdict.OK:
        return Verdict.TRANSIENT if first is Verdict.TRANSIENT else None
    second = checks.init(project, canonical)
    if second is Verdict.TRANSIENT:
        return Verdict.TRANSIENT
    if second is Verdict.FAILED:
        return None
    return checks.compare(project, result, canonical)


def _outputs_present(project: Project, result: Row) -> bool:
    return all(f.path.is_file() for f in output_files(project, result["xml_doc_in"]))


def _mark_invalid(database: Database, result: Row, why: str) -> None:
    log(f"[RESULT#{result['id']} {result['name']}] {why}: invalid")
    database.update(
        "result",
        result["id"],
        validate_state=ValidateState.INVALID,
        outcome=Outcome.VALIDATE_ERROR,
    )


def _successful_results(database: Database, wu: Row) -> list[Row]:
    return database.all(
        "SELECT * FROM result WHERE workunitid = ? AND server_state = ? AND outcome = ?"
        " AND validate_state IN (?, ?) ORDER BY id",
        wu["id"],
        ServerState.OVER,
        Outcome.SUCCESS,
        ValidateState.INIT,
        ValidateState.INCONCLUSIVE,
    )


def _validate_stragglers(
    project: Project, database: Database, wu: Row, results: list[Row], checks: Checks
) -> bool:
    """check_pair for each new result; True if one needs a retry."""
    canonical = database.one("SELECT * FROM result WHERE id = ?", wu["canonical_resultid"])
    retry = False
    for r in results:
        verdict = check_pair(project, r, canonical, checks)
        if verdict is None:
            _mark_invalid(database, r, "check_pair: init_result failed")
        elif verdict is Verdict.TRANSIENT:
            retry = True
        else:
            state = ValidateState.VALID if verdict is Verdict.OK else ValidateState.INVALID
            database.update("result", r["id"], validate_state=state)
    return retry


def validate(project: Project, database: Database, wu: Row, checks: Checks) -> None:
    now = int(time.time())
    results = []
    for r in _successful_results(database, wu):
        if _outputs_present(project, r):
            results.append(r)
        else:
            _mark_invalid(database, r, "output file missing")
    changes: dict[str, int] = {"need_validate": 0}
    if wu["canonical_resultid"]:
        retry = _validate_stragglers(project, database, wu, results, checks)
    else:
        outcome, states, invalid = check_set(project, results, wu, checks)
        retry = outcome.retry
        for r in results:
            if r["id"] in invalid:
                _mark_invalid(database, r, "init_result failed")
            elif r["id"] in states:
                database.update("result", r["id"], validate_state=states[r["id"]])
            elif not outcome.retry or r["validate_state"] != ValidateState.INIT:
                database.update("result", r["id"], validate_state=ValidateState.INCONCLUSIVE)
        if outcome.canonical is not None:
            canonical = outcome.canonical
            log(f"[WU#{wu['id']} {wu['name']}] Found a canonical result: id={canonical['id']}")
            changes.update(
                canonical_resultid=canonical["id"],
                assimilate_state=AssimilateState.READY,
                transition_time=NEVER,
            )
            database.execute(
                "UPDATE result SET server_state = ?, outcome = ?"
                " WHERE workunitid = ? AND server_state = ?",
                ServerState.OVER,
                Outcome.DIDNT_NEED,
                wu["id"],
                ServerState.UNSENT,
            )
        elif not retry:
            nsuccess = len(results) - len(invalid)
            if nsuccess > wu["max_success_results"]:
                changes["error_mask"] = wu["error_mask"] | WuError.TOO_MANY_SUCCESS_RESULTS
                changes["transition_time"] = now
            if nsuccess >= wu["target_nresults"]:
                changes["target_nresults"] = nsuccess + 1
                changes["transition_time"] = now
                log(f"[WU#{wu['id']} {wu['name']}] no consensus: asking for another result")
    if retry:
        changes["transition_time"] = min(wu["transition_time"], now + VALIDATE_RETRY_SECONDS)
        log(f"[WU#{wu['id']} {wu['name']}] transient error: validating again later")
    database.update("workunit", wu["id"], **changes)


def make_setup(program: str, checks_for: Callable[[Project, Options], Checks]):
    def setup(project: Project, options: Options):
        app = required(options, "app", program)
        checks = checks_for(project, options)
        with project.connect() as database:
            appid = app_id(database, app)

        def one_pass(database: Database) -> bool:
            with database.transaction():
                due = database.all(
                    "SELECT * FROM workunit WHERE appid = ? AND need_validate = 1", appid
                )
                for wu in due:
                    validate(project, database, wu, checks)
            return bool(due)

        return one_pass

    return setup


# script_validator: the scripts' command lines.
INIT_DEFAULT_ARGS = ("files",)
COMPARE_DEFAULT_ARGS = ("files", "files2")


def _script_argv(project: Project, words: list[str], first: Row, second: Row | None) -> list[str]:
    """bin/NAME and the values of its keywords (words that are no keyword are dropped,
    as the real one drops them)."""
    argv = [str(project.bin_dir / words[0])]
    for word in words[1:]:
        if word == "files":
            argv += [str(f.path) for f in output_files(project, first["xml_doc_in"])]
        elif word == "runtime":
            argv.append(f"{first['elapsed_time']:f}")
        elif word == "result_id":
            argv.append(str(first["id"]))
        elif second is not None and word == "files2":
            argv += [str(f.path) for f in output_files(project, second["xml_doc_in"])]
        elif second is not None and word == "runtime2":
            argv.append(f"{second['elapsed_time']:f}")
        elif second is not None and word == "result_id2":
            argv.append(str(second["id"]))
    return argv


def _run_script(project: Project, argv: list[str]) -> Verdict:
    try:
        status = subprocess.run(argv, cwd=project.bin_dir).returncode
    except OSError as error:
        log(f"script {argv[0]} didn't run: {error}")
        return Verdict.FAILED
    if status == 0:
        return Verdict.OK
    if status == VAL_RESULT_TRANSIENT_ERROR:
        return Verdict.TRANSIENT
    log(f"script {' '.join(argv)} returned: {status}")
    return Verdict.FAILED


def _script_words(options: Options, name: str, defaults: tuple[str, ...]) -> list[str] | None:
    """`--init_script "NAME [args]"`: split on spaces; a bare NAME gets the defaults."""
    text = options.values.get(name)
    if text is None:
        return None
    words = text.split()
    if not words:
        raise DaemonExit(f"script_validator: --{name} is empty")
    return words if len(words) > 1 else [*words, *defaults]


def script_checks(project: Project, options: Options) -> Checks:
    init = _script_words(options, "init_script", INIT_DEFAULT_ARGS)
    compare = _script_words(options, "compare_script", COMPARE_DEFAULT_ARGS)
    if init is None and compare is None:
        raise DaemonExit("command line must specify init_script or compare_script")

    def check_one(project: Project, result: Row) -> Verdict:
        return _run_script(project, _script_argv(project, init, result, None))

    def compare_two(project: Project, first: Row, second: Row) -> Verdict:
        return _run_script(project, _script_argv(project, compare, first, second))

    return Checks(
        init=check_one if init is not None else _always,
        compare=compare_two if compare is not None else _always,
    )


trivial_main = main_for(
    "sample_trivial_validator",
    make_setup("sample_trivial_validator", lambda _project, _options: TRIVIAL),
    value_options=("app",),
)
bitwise_main = main_for(
    "sample_bitwise_validator",
    make_setup("sample_bitwise_validator", lambda _project, _options: BITWISE),
    value_options=("app",),
)
SCRIPT_OPTIONS = ("app", "init_script", "compare_script")
script_main = main_for(
    "script_validator",
    make_setup("script_validator", script_checks),
    value_options=SCRIPT_OPTIONS,
)
