"""`transitioner`: moves workunits through their states.

Stands in for BOINC's transitioner (sched/transitioner.cpp). For each workunit whose
transition_time has come it: times out results past their report deadline; marks the
workunit in error when it has more than max_error_results errors, more than
max_success_results successes, or would need more than max_total_results results;
creates results up to target_nresults; asks for validation once min_quorum results
succeeded (and for each later one, against the canonical result); and marks files for
deletion once the workunit is assimilated.
"""

from __future__ import annotations

import time
from sqlite3 import Row

from ..constants import (
    AssimilateState,
    FileDeleteState,
    Outcome,
    ServerState,
    ValidateState,
    WuError,
)
from ..db import Database
from ..layout import Project
from ..templates import TemplateError, process_result_template
from .common import Options, log, main_for

#: transition_time of a workunit that waits for nothing (INT_MAX in BOINC).
NEVER = 2**31 - 1
ERROR_OUTCOMES = (Outcome.CLIENT_ERROR, Outcome.VALIDATE_ERROR, Outcome.COULDNT_SEND)


def _create_results(project: Project, database: Database, wu: Row, count: int, first: int):
    template = (project.root / wu["result_template_file"]).read_text()
    for i in range(first, first + count):
        name = f"{wu['name']}_{i}"
        database.insert(
            "result",
            create_time=int(time.time()),
            workunitid=wu["id"],
            server_state=ServerState.UNSENT,
            name=name,
            xml_doc_in=process_result_template(template, name, project.upload_url),
            appid=wu["appid"],
            batch=wu["batch"],
            priority=wu["priority"],
        )
        log(f"[WU#{wu['id']} {wu['name']}] created result {name}")


def transition(project: Project, database: Database, wu: Row, now: int) -> None:
    results = database.all("SELECT * FROM result WHERE workunitid = ? ORDER BY id", wu["id"])
    for r in results:
        if r["server_state"] == ServerState.IN_PROGRESS and r["report_deadline"] < now:
            database.update(
                "result", r["id"], server_state=ServerState.OVER, outcome=Outcome.NO_REPLY
            )
            log(f"[RESULT#{r['id']} {r['name']}] timed out")
    results = database.all("SELECT * FROM result WHERE workunitid = ? ORDER BY id", wu["id"])
    state = {s: [r for r in results if r["server_state"] == s] for s in ServerState}
    over = state[ServerState.OVER]
    successes = [
        r
        for r in over
        if r["outcome"] == Outcome.SUCCESS and r["validate_state"] != ValidateState.INVALID
    ]
    nerrors = sum(r["outcome"] in ERROR_OUTCOMES for r in over)
    error_mask = wu["error_mask"]
    changes: dict[str, int] = {}

    if not error_mask and not wu["canonical_resultid"]:
        if nerrors > wu["max_error_results"]:
            error_mask |= WuError.TOO_MANY_ERROR_RESULTS
        if len(successes) > wu["max_success_results"]:
            error_mask |= WuError.TOO_MANY_SUCCESS_RESULTS
        needed = wu["target_nresults"] - len(state[ServerState.UNSENT])
        needed -= len(state[ServerState.IN_PROGRESS]) + len(successes)
        if not error_mask and needed > 0:
            if len(results) + needed > wu["max_total_results"]:
                error_mask |= WuError.TOO_MANY_TOTAL_RESULTS
            else:
                try:
                    _create_results(project, database, wu, needed, len(results))
                except (OSError, TemplateError) as error:
                    log(f"[WU#{wu['id']}] can't create results: {error}")
                    error_mask |= WuError.COULDNT_SEND_RESULT
        if error_mask:
            log(f"[WU#{wu['id']} {wu['name']}] error_mask {error_mask}")
            changes.update(error_mask=error_mask, assimilate_state=AssimilateState.READY)

    # A new successful result is validated once there are min_quorum successes, or at
    # once against the canonical result if there is one (a straggler).
    unvalidated = [r for r in successes if r["validate_state"] == ValidateState.INIT]
    quorum = wu["canonical_resultid"] or len(successes) >= wu["min_quorum"]
    if not error_mask and unvalidated and quorum:
        changes["need_validate"] = 1

    if error_mask or wu["canonical_resultid"]:
        for r in state[ServerState.UNSENT]:
            database.update(
                "result", r["id"], server_state=ServerState.OVER, outcome=Outcome.DIDNT_NEED
            )

    busy = state[ServerState.IN_PROGRESS]
    if wu["assimilate_state"] == AssimilateState.DONE and not busy:
        if wu["file_delete_state"] == FileDeleteState.INIT:
            changes["file_delete_state"] = FileDeleteState.READY
        for r in results:
            if r["file_delete_state"] == FileDeleteState.INIT:
                database.update("result", r["id"], file_delete_state=FileDeleteState.READY)
    deadlines = [r["report_deadline"] for r in busy if r["report_deadline"] > now]
    changes["transition_time"] = min(deadlines) if deadlines else NEVER
    database.update("workunit", wu["id"], **changes)


def setup(project: Project, options: Options):
    def one_pass(database: Database) -> bool:
        now = int(time.time())
        with database.transaction():
            due = database.all("SELECT * FROM workunit WHERE transition_time <= ? LIMIT 100", now)
            for wu in due:
                transition(project, database, wu, now)
        return bool(due)

    return one_pass


main = main_for("transitioner", setup)
