"""`submit_rpc_handler.php`: remote job submission, the web RPCs a scientist submits with.

Stands in for `html/user/submit_rpc_handler.php` of BOINC 8.3 (server release 1.6.2).
A client POSTs the form field `request=<XML>` whose root tag is the operation and which
carries the account's `<authenticator>`. Supported: submit_batch, create_batch,
estimate_batch, query_batch, query_job, abort_batch, retire_batch, get_templates.

submit_batch works as the real one: it looks up the app, checks submit rights, checks
each job's input-file count against the app's input template (templates/<app>_in),
stages `inline` inputs as `jf_<md5>` in the download hierarchy, inserts the batch row,
runs the project's `create_work --appname A --batch N ... --stdin` once for the
whole batch (one line per job), then marks the batch in progress. query_batch computes
fraction_done, nerror_jobs and completion from the workunits (`get_batch_params`).
Not supported: input modes local, semilocal and sandbox (paths and sandboxes on the
server), per-job templates, allocation priorities, query_batches, abort_jobs.
"""

from __future__ import annotations

import email.utils
import io
import shlex
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from hashlib import md5
from html import escape
from sqlite3 import Row

from ..constants import (
    PROJECT_FLOPS_WITHOUT_CREDIT,
    AssimilateState,
    BatchState,
    Outcome,
    ServerState,
    WuError,
)
from ..create_work import create_work_main
from ..db import Database
from ..layout import Project
from .base import Area, Endpoint
from .submit_util import Form, XmlError, check_submit_permissions, is_valid_filename, rpc_handler

#: create_work options a batch's <job_params> may set (job_params->... in the real one).
JOB_PARAMS = ("rsc_disk_bound", "rsc_fpops_est", "rsc_fpops_bound", "rsc_memory_bound")
#: Names query_batch's job details give the bits of a workunit's error_mask.
WU_ERROR_NAMES = {
    WuError.COULDNT_SEND_RESULT: "couldnt_send_result",
    WuError.TOO_MANY_ERROR_RESULTS: "too_many_error_results",
    WuError.TOO_MANY_SUCCESS_RESULTS: "too_many_success_results",
    WuError.TOO_MANY_TOTAL_RESULTS: "too_many_total_results",
    WuError.CANCELLED: "cancelled",
    WuError.NO_CANONICAL_RESULT: "no_canonical_result",
}
#: query_job's instance states (html/inc/result.inc state_string, in short).
OUTCOME_NAMES = {
    Outcome.SUCCESS: "Completed",
    Outcome.COULDNT_SEND: "Couldn't send",
    Outcome.CLIENT_ERROR: "Error while computing",
    Outcome.NO_REPLY: "Timed out - no response",
    Outcome.DIDNT_NEED: "Didn't need",
    Outcome.VALIDATE_ERROR: "Validate error",
}
SERVER_STATE_NAMES = {
    ServerState.INACTIVE: "Inactive",
    ServerState.UNSENT: "Unsent",
    ServerState.IN_PROGRESS: "In progress",
}


@dataclass
class JobFile:
    """One <input_file> of a job; `name` is its physical name once staged."""

    mode: str
    source: str = ""
    url: str = ""
    nbytes: str = ""
    md5: str = ""
    name: str = ""


@dataclass
class Job:
    name: str
    command_line: str
    rsc_fpops_est: float
    files: list[JobFile]


def php_number(value: float) -> str:
    """A number as PHP echoes it (1.0 -> "1", 14 significant digits)."""
    return f"{value:.14g}"


def _text(element: ET.Element | None, tag: str) -> str:
    return (element.findtext(tag) or "").strip() if element is not None else ""


def _float(element: ET.Element | None, tag: str) -> float:
    try:
        return float(_text(element, tag) or 0)
    except ValueError:
        return 0.0


def get_submit_app(database: Database, name: str) -> Row:
    app = database.one("SELECT * FROM app WHERE name = ?", name)
    if app is None:
        raise XmlError(f"app not found: {name}")
    return app


def read_input_template(project: Project, app_name: str) -> ET.Element | None:
    """templates/<app>_in, as the real handler reads it (None if there is none)."""
    path = project.root / "templates" / f"{app_name}_in"
    if not path.is_file():
        return None
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        raise XmlError(f"couldn't parse input template file {path}") from error


def parse_jobs(batch: ET.Element) -> list[Job]:
    return [
        Job(
            name=_text(job, "name"),
            command_line=_text(job, "command_line"),
            rsc_fpops_est=_float(job, "rsc_fpops_est"),
            files=[
                JobFile(
                    mode=_text(f, "mode"),
                    # inline data keeps its whitespace: it is the file's contents
                    source=f.findtext("source") or "",
                    url=_text(f, "url"),
                    nbytes=_text(f, "nbytes"),
                    md5=_text(f, "md5"),
                )
                for f in job.findall("input_file")
            ],
        )
        for job in batch.findall("job")
    ]


def validate_batch(jobs: list[Job], template: ET.Element) -> None:
    needed = len(template.findall("file_info"))
    for i, job in enumerate(jobs):
        if len(job.files) != needed:
            raise XmlError(
                f"wrong # of input files for job {i}: need {needed}, got {len(job.files)}"
            )


def stage_file(project: Project, file: JobFile) -> str:
    """The physical name of an input, written to download/ first if it is inline."""
    if file.mode == "local_staged":
        if not is_valid_filename(file.source):
            raise XmlError(f"bad file name {file.source}")
        return file.source
    if file.mode == "inline":
        data = file.source.encode()
        name = f"jf_{md5(data).hexdigest()}"
        try:
            path = project.download_path(name)
            if not path.exists():
                path.write_bytes(data)
        except OSError as error:
            raise XmlError(f"can't write input file {name}: {error.strerror}") from error
        return name
    raise XmlError(f"unsupported file mode: {file.mode}")


def _create_work_line(job: Job) -> str:
    words = []
    if job.name:
        words += ["--wu_name", job.name]
    if job.command_line:
        words += ["--command_line", job.command_line]
    for f in job.files:
        words += ["--remote_file", f.url, f.nbytes, f.md5] if f.mode == "remote" else [f.name]
    return shlex.join(words)


def submit_jobs(project: Project, app: Row, batch_id: int, jobs: list[Job], params) -> None:
    """One `create_work --stdin` run for the whole batch, as the real handler does.

    It runs in this (web user's) process: the web user need not reach the interpreter
    that bin/create_work names, but runs the same code with the same messages.
    """
    argv = ["--appname", app["name"], "--batch", str(batch_id)]
    for option in JOB_PARAMS:
        if _float(params, option):
            argv += [f"--{option}", _text(params, option)]
    if _float(params, "delay_bound"):
        argv += ["--delay_bound", str(int(_float(params, "delay_bound")))]
    errors = io.StringIO()
    lines = io.StringIO("".join(_create_work_line(job) + "\n" for job in jobs))
    if create_work_main(project, [*argv, "--stdin"], stdin=lines, stderr=errors):
        raise XmlError(f"create_work failed: {errors.getvalue()}".strip())


def _owned_batch(database: Database, batch_id: int, user: Row) -> Row:
    batch = database.one("SELECT * FROM batch WHERE id = ?", batch_id)
    if batch is None:
        raise XmlError(f"no batch {batch_id}")
    if batch["user_id"] != user["id"]:
        raise XmlError("not owner of batch")
    if batch["state"] != BatchState.INIT:
        raise XmlError("batch not in init state")
    return batch


def make_batch_name(user: Row, app: Row) -> str:
    return f"{user['name']}:{app['name']}:{email.utils.formatdate(localtime=True)}"


def submit_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    batch = root.find("batch")
    app = get_submit_app(database, _text(batch, "app_name"))
    user = check_submit_permissions(database, root, app["id"])
    jobs = parse_jobs(batch)
    template = read_input_template(project, app["name"])
    if template is not None:
        validate_batch(jobs, template)
    for job in jobs:
        for f in job.files:
            if f.mode != "remote":
                f.name = stage_file(project, f)
    batch_id = int(_float(batch, "batch_id"))
    if batch_id:
        _owned_batch(database, batch_id, user)
        database.update("batch", batch_id, njobs=len(jobs))
    else:
        batch_id = database.insert(
            "batch",
            user_id=user["id"],
            create_time=int(time.time()),
            njobs=len(jobs),
            name=_text(batch, "batch_name") or make_batch_name(user, app),
            app_id=app["id"],
            state=BatchState.INIT,
        )
    submit_jobs(project, app, batch_id, jobs, batch.find("job_params"))
    # In progress only once the jobs exist, or query_batch could call it complete.
    database.update("batch", batch_id, state=BatchState.IN_PROGRESS)
    return f"<batch_id>{batch_id}</batch_id>\n"


def create_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    app = get_submit_app(database, _text(root, "app_name"))
    user = check_submit_permissions(database, root, app["id"])
    batch_id = database.insert(
        "batch",
        user_id=user["id"],
        create_time=int(time.time()),
        name=_text(root, "batch_name") or make_batch_name(user, app),
        app_id=app["id"],
        state=BatchState.INIT,
        expire_time=int(_float(root, "expire_time")),
    )
    return f"<batch_id>{batch_id}</batch_id>\n"


def estimate_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    """Batch FLOPs over the project's FLOPS (`est_elapsed_time`, crude like the real one)."""
    batch = root.find("batch")
    app = get_submit_app(database, _text(batch, "app_name"))
    check_submit_permissions(database, root, app["id"])
    template = read_input_template(project, app["name"])
    default = _float(template.find("workunit") if template is not None else None, "rsc_fpops_est")
    flops = 0.0
    for job in parse_jobs(batch):
        if not (job.rsc_fpops_est or default):
            raise XmlError("no rsc_fpops_est given for job")
        flops += job.rsc_fpops_est or default
    return f"<seconds>{php_number(flops / PROJECT_FLOPS_WITHOUT_CREDIT)}</seconds>\n"


def get_batch(database: Database, root: ET.Element) -> Row:
    """The batch a request names by <batch_id> or <batch_name>."""
    if _text(root, "batch_id"):
        batch = database.one("SELECT * FROM batch WHERE id = ?", int(_float(root, "batch_id")))
    elif _text(root, "batch_name"):
        batch = database.one("SELECT * FROM batch WHERE name = ?", _text(root, "batch_name"))
    else:
        raise XmlError("batch not specified")
    if batch is None:
        raise XmlError("no such batch")
    return batch


def _user_batch(database: Database, root: ET.Element) -> Row:
    user = check_submit_permissions(database, root, None)
    batch = get_batch(database, root)
    if batch["user_id"] != user["id"]:
        raise XmlError("not owner of batch")
    return batch


def batch_progress(database: Database, batch: Row, wus: list[Row]) -> Row:
    """Fraction done, errors and completion from the workunits (`get_batch_params`).

    A batch in progress whose jobs all have a canonical result or an error becomes
    complete; the row is updated, as the real page does on every query.
    """
    fp_total = sum(wu["rsc_fpops_est"] for wu in wus)
    fp_done = sum(wu["rsc_fpops_est"] for wu in wus if wu["canonical_resultid"])
    errors = sum(1 for wu in wus if not wu["canonical_resultid"] and wu["error_mask"])
    finished = all(wu["canonical_resultid"] or wu["error_mask"] for wu in wus)
    changes = {"nerror_jobs": errors, "fraction_done": fp_done / fp_total if fp_total else 0}
    if finished and batch["state"] == BatchState.IN_PROGRESS:
        changes |= {"state": BatchState.COMPLETE, "completion_time": int(time.time())}
    database.update("batch", batch["id"], **changes)
    return database.one("SELECT * FROM batch WHERE id = ?", batch["id"])


def batch_params(database: Database, batch: Row) -> str:
    app = database.one("SELECT name FROM app WHERE id = ?", batch["app_id"])
    fields = {
        "id": batch["id"],
        "create_time": batch["create_time"],
        "expire_time": batch["expire_time"],
        "est_completion_time": batch["est_completion_time"],
        "njobs": batch["njobs"],
        "fraction_done": php_number(batch["fraction_done"]),
        "nerror_jobs": batch["nerror_jobs"],
        "state": batch["state"],
        "completion_time": batch["completion_time"],
        "credit_estimate": php_number(batch["credit_estimate"]),
        "credit_canonical": php_number(batch["credit_canonical"]),
        "name": batch["name"],
        "app_name": app["name"] if app else "none",
    }
    return "".join(
        f"        <{tag}>{escape(str(value), quote=False)}</{tag}>\n"
        for tag, value in fields.items()
    )


def job_details(database: Database, wu: Row) -> str:
    """A job's errors, cpu_time and status (`show_job_details`)."""
    lines = [
        f"   <error>{name}</error>"
        for bit, name in WU_ERROR_NAMES.items()
        if wu["error_mask"] & bit
    ]
    results = database.all("SELECT * FROM result WHERE workunitid = ?", wu["id"])
    for r in results:
        if wu["error_mask"] and r["outcome"] == Outcome.CLIENT_ERROR:
            lines.append(f"            <exit_status>{r['exit_status']}</exit_status>")
        if r["id"] == wu["canonical_resultid"]:
            lines.append(f"            <cpu_time>{php_number(r['cpu_time'])}</cpu_time>")
    if wu["error_mask"]:
        status = "error"
    elif wu["canonical_resultid"]:
        status = "done"
    elif any(r["server_state"] == ServerState.IN_PROGRESS for r in results):
        status = "in_progress"
    else:
        status = "queued"
    lines.append(f"            <status>{status}</status>")
    return "".join(line + "\n" for line in lines)


def query_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    batch = _user_batch(database, root)
    wus = database.all("SELECT * FROM workunit WHERE batch = ? ORDER BY id", batch["id"])
    batch = batch_progress(database, batch, wus)
    details = bool(_float(root, "get_job_details"))
    parts = [batch_params(database, batch)]
    for wu in wus:
        parts.append(
            f"        <job>\n        <id>{wu['id']}</id>\n"
            f"        <name>{escape(wu['name'], quote=False)}</name>\n"
            f"        <canonical_instance_id>{wu['canonical_resultid']}</canonical_instance_id>\n"
        )
        if details:
            parts.append(job_details(database, wu))
        parts.append("        </job>\n")
    return "".join(parts)


def instance_state(result: Row) -> str:
    if result["server_state"] == ServerState.OVER:
        return OUTCOME_NAMES.get(result["outcome"], "Unknown")
    return SERVER_STATE_NAMES.get(result["server_state"], "Unknown")


def query_job(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    """A job's instances (results), with the sizes of outputs still in upload/."""
    user = check_submit_permissions(database, root, None)
    wu = database.one("SELECT * FROM workunit WHERE id = ?", int(_float(root, "job_id")))
    if wu is None:
        raise XmlError("no such job")
    batch = database.one("SELECT user_id FROM batch WHERE id = ?", wu["batch"])
    if batch is None or batch["user_id"] != user["id"]:
        raise XmlError("not owner")
    parts = []
    for r in database.all("SELECT * FROM result WHERE workunitid = ? ORDER BY id", wu["id"]):
        parts.append(
            f"    <instance>\n        <name>{r['name']}</name>\n        <id>{r['id']}</id>\n"
            f"        <state>{instance_state(r)}</state>\n"
        )
        if r["server_state"] == ServerState.OVER and r["xml_doc_out"]:
            for info in ET.fromstring(f"<a>{r['xml_doc_out']}</a>").findall("file_info"):
                path = project.upload_path(_text(info, "name"), create=False)
                if path.is_file():
                    size = path.stat().st_size
                    parts.append(
                        f"        <outfile>\n            <size>{size}</size>\n        </outfile>\n"
                    )
        parts.append("</instance>\n")
    return "".join(parts)


def abort_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    """Cancel every job of the batch (`abort_workunit`): unsent instances are not needed."""
    batch = _user_batch(database, root)
    with database.transaction():
        for wu in database.all("SELECT id FROM workunit WHERE batch = ?", batch["id"]):
            database.execute(
                "UPDATE result SET server_state = ?, outcome = ?"
                " WHERE server_state = ? AND workunitid = ?",
                ServerState.OVER,
                Outcome.DIDNT_NEED,
                ServerState.UNSENT,
                wu["id"],
            )
            database.execute(
                "UPDATE workunit SET error_mask = error_mask | ? WHERE id = ?",
                WuError.CANCELLED,
                wu["id"],
            )
        database.update("batch", batch["id"], state=BatchState.ABORTED)
    return "<success>1</success>\n"


def retire_batch(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    """Mark the batch's workunits assimilated, so the file_deleter and purge clean up."""
    batch = _user_batch(database, root)
    with database.transaction():
        database.execute(
            "UPDATE workunit SET assimilate_state = ?, transition_time = ? WHERE batch = ?",
            AssimilateState.DONE,
            int(time.time()),
            batch["id"],
        )
        database.update("batch", batch["id"], state=BatchState.RETIRED)
    return "<success>1</success>\n"


def get_templates(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    if _text(root, "app_name"):
        app = get_submit_app(database, _text(root, "app_name"))
    else:
        wu = database.one("SELECT appid FROM workunit WHERE name = ?", _text(root, "job_name"))
        if wu is None:
            raise XmlError(f"job not found: {_text(root, 'job_name')}")
        app = database.one("SELECT * FROM app WHERE id = ?", wu["appid"])
    check_submit_permissions(database, root, app["id"])
    paths = [project.root / "templates" / f"{app['name']}_{kind}" for kind in ("in", "out")]
    if not all(p.is_file() for p in paths):
        raise XmlError("template file missing")
    return "<templates>\n" + "\n".join(p.read_text() for p in paths) + "\n</templates>\n"


OPERATIONS = {
    "submit_batch": submit_batch,
    "create_batch": create_batch,
    "estimate_batch": estimate_batch,
    "query_batch": query_batch,
    "query_job": query_job,
    "abort_batch": abort_batch,
    "retire_batch": retire_batch,
    "get_templates": get_templates,
}

ENDPOINTS = [
    Endpoint("POST", Area.HTML, "submit_rpc_handler.php", rpc_handler(OPERATIONS, "bad command"))
]
