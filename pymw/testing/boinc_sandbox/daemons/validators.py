"""`sample_trivial_validator` and `sample_bitwise_validator`: choosing canonical results.

Stand in for BOINC's validators built from sched/validator.cpp with
sample_trivial_validator.cpp (every successful result is valid) and
sample_bitwise_validator.cpp (results agree when their output files are identical).
Once min_quorum successful results agree, one of them becomes the workunit's canonical
result and the workunit is ready to assimilate; results whose output files are missing
are invalid. Without agreement the validator asks the transitioner for one more result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from sqlite3 import Row

from ..constants import AssimilateState, Outcome, ServerState, ValidateState
from ..db import Database
from ..jobs import output_files
from ..layout import Project
from ..signing import md5_file
from .common import Options, app_id, log, main_for, required

#: Given a workunit's successful results, return the agreeing group (canonical first).
Checker = Callable[[Project, list[Row], int], list[Row]]


def trivial(project: Project, results: list[Row], min_quorum: int) -> list[Row]:
    return results if len(results) >= min_quorum else []


def bitwise(project: Project, results: list[Row], min_quorum: int) -> list[Row]:
    groups: dict[tuple[str, ...], list[Row]] = {}
    for r in results:
        key = tuple(md5_file(f.path) for f in output_files(project, r["xml_doc_in"]))
        groups.setdefault(key, []).append(r)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= min_quorum else []


def _outputs_present(project: Project, result: Row) -> bool:
    return all(f.path.is_file() for f in output_files(project, result["xml_doc_in"]))


def validate(project: Project, database: Database, wu: Row, check: Checker) -> None:
    now = int(time.time())
    results = database.all(
        "SELECT * FROM result WHERE workunitid = ? AND server_state = ? AND outcome = ?"
        " AND validate_state IN (?, ?) ORDER BY id",
        wu["id"],
        ServerState.OVER,
        Outcome.SUCCESS,
        ValidateState.INIT,
        ValidateState.VALID,
    )
    usable = []
    for r in results:
        if _outputs_present(project, r):
            usable.append(r)
        else:
            log(f"[RESULT#{r['id']} {r['name']}] output file missing: invalid")
            database.update(
                "result",
                r["id"],
                validate_state=ValidateState.INVALID,
                outcome=Outcome.VALIDATE_ERROR,
            )
    changes: dict[str, int] = {"need_validate": 0, "transition_time": now}
    if wu["canonical_resultid"]:
        for r in usable:
            database.update("result", r["id"], validate_state=ValidateState.VALID)
    elif agreeing := check(project, usable, wu["min_quorum"]):
        ids = {r["id"] for r in agreeing}
        for r in usable:
            state = ValidateState.VALID if r["id"] in ids else ValidateState.INVALID
            database.update("result", r["id"], validate_state=state)
        changes.update(canonical_resultid=agreeing[0]["id"], assimilate_state=AssimilateState.READY)
        log(f"[WU#{wu['id']} {wu['name']}] canonical result {agreeing[0]['name']}")
    else:
        changes["target_nresults"] = max(wu["target_nresults"], len(usable) + 1)
        log(f"[WU#{wu['id']} {wu['name']}] no consensus yet: asking for another result")
    database.update("workunit", wu["id"], **changes)


def make_setup(program: str, check: Checker):
    def setup(project: Project, options: Options):
        app = required(options, "app", program)
        with project.connect() as database:
            appid = app_id(database, app)

        def one_pass(database: Database) -> bool:
            with database.transaction():
                due = database.all(
                    "SELECT * FROM workunit WHERE appid = ? AND need_validate = 1", appid
                )
                for wu in due:
                    validate(project, database, wu, check)
            return bool(due)

        return one_pass

    return setup


trivial_main = main_for(
    "sample_trivial_validator",
    make_setup("sample_trivial_validator", trivial),
    value_options=("app",),
)
bitwise_main = main_for(
    "sample_bitwise_validator",
    make_setup("sample_bitwise_validator", bitwise),
    value_options=("app",),
)
