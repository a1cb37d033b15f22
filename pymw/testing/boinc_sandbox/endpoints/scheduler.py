"""The scheduler: `scheduler_request` in, `scheduler_reply` out.

Stands in for BOINC's scheduler CGI (sched/sched_main.cpp and friends, release 1.6.2)
as the Debian client 7.20.5 sees it (see tests/data/boinc_reference/ for a real
exchange). It authenticates the account, gives a new host its hostid, sends the
code-signing key to a client that lacks it, records reported results and acknowledges
them, and sends jobs the feeder has cached: for each, the app, its app version's signed
files, the workunit's input files, the workunit, the output files and the result.

As strict as the real one (config.xml of a project made by make_project):
- no <report_immediately/> unless the output template's <result> has it (or the
  sandbox-only flag `sandbox_report_immediately`): clients report lazily, on a later RPC;
- <request_delay> min_sendwork_interval, and no work to a host that asks again sooner
  ("Not sending work - last request too recent");
- <send_result_abort/>: for each task the client still has (<other_results>), a
  <result_abort> if the server does not know it or its workunit was cancelled, a
  <result_abort_if_not_started> if its workunit is assimilated or it timed out;
- <daily_result_quota>: at most that many jobs per CPU, app version and day to a host;
- the database down: "Server can't open database", <project_is_down/>.
Not supported: anonymous platform (app_info.xml), plan classes chosen by host
capability, homogeneous redundancy, credit, the host's error-driven quota cuts.
"""

from __future__ import annotations

import random
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from sqlite3 import Row

from ..constants import (
    DAILY_RESULT_QUOTA,
    MAINTENANCE_DELAY_SECONDS,
    MAX_WUS_TO_SEND,
    SCHEDULER_VERSION,
    STOP_SCHED_FILE,
    AssimilateState,
    ClientState,
    Outcome,
    ServerState,
    ValidateState,
    WuError,
)
from ..db import Database, DatabaseDown
from ..layout import REPORT_IMMEDIATELY_FLAG, Project
from ..signing import PUBLIC_KEY_FILE
from ..templates import parse_fragment, to_text
from .base import Area, Endpoint, Request, Response, xml_response

#: Seconds a client waits after a refused request (bad account, project down).
REFUSED_DELAY = 60


@dataclass(frozen=True)
class ReportedFile:
    name: str
    nbytes: float
    md5: str


@dataclass
class ReportedResult:
    """A finished task in a scheduler request."""

    name: str
    state: int
    exit_status: int
    cpu_time: float
    elapsed_time: float
    stderr_out: str
    files: list[ReportedFile]
    file_info_xml: str


@dataclass
class SchedulerRequest:
    authenticator: str
    hostid: int
    rpc_seqno: int
    platform: str
    work_req_seconds: float
    cpu_req_secs: float
    cpu_req_instances: float
    has_code_sign_key: bool
    domain_name: str
    p_ncpus: int
    p_fpops: float
    results: list[ReportedResult] = field(default_factory=list)
    #: Names of the tasks the client has and is not reporting (<other_results>).
    other_results: list[str] = field(default_factory=list)

    @property
    def wants_work(self) -> bool:
        return max(self.work_req_seconds, self.cpu_req_secs) > 0 or self.cpu_req_instances > 0


def _number(element: ET.Element, tag: str, default: float = 0) -> float:
    text = element.findtext(tag)
    return float(text) if text and text.strip() else default


def parse_request(text: str) -> SchedulerRequest:
    root = ET.fromstring(text)
    host = root.find("host_info")
    if host is None:
        host = ET.Element("host_info")
    results = []
    # stderr_out holds a CDATA section that ElementTree would split: take it raw.
    raw_results = re.findall(r"<result>.*?</result>", text, re.S)
    for raw, element in zip(raw_results, root.findall("result"), strict=False):
        stderr = re.search(r"<stderr_out>(.*?)</stderr_out>", raw, re.S)
        infos = element.findall("file_info")
        results.append(
            ReportedResult(
                name=element.findtext("name", "").strip(),
                state=int(_number(element, "state")),
                exit_status=int(_number(element, "exit_status")),
                cpu_time=_number(element, "final_cpu_time"),
                elapsed_time=_number(element, "final_elapsed_time"),
                stderr_out=stderr.group(1) if stderr else "",
                files=[
                    ReportedFile(
                        name=i.findtext("name", "").strip(),
                        nbytes=_number(i, "nbytes"),
                        md5=i.findtext("md5_cksum", "").strip(),
                    )
                    for i in infos
                ],
                file_info_xml="".join(to_text(i) for i in infos),
            )
        )
    return SchedulerRequest(
        authenticator=root.findtext("authenticator", "").strip(),
        hostid=int(_number(root, "hostid")),
        rpc_seqno=int(_number(root, "rpc_seqno")),
        platform=root.findtext("platform_name", "").strip(),
        work_req_seconds=_number(root, "work_req_seconds"),
        cpu_req_secs=_number(root, "cpu_req_secs"),
        cpu_req_instances=_number(root, "cpu_req_instances"),
        has_code_sign_key=bool((root.findtext("code_sign_key") or "").strip()),
        domain_name=host.findtext("domain_name", "").strip(),
        p_ncpus=int(_number(host, "p_ncpus", 1)),
        p_fpops=_number(host, "p_fpops", 1e9) or 1e9,
        results=results,
        other_results=[
            (e.findtext("name") or "").strip() for e in root.iterfind("other_results/other_result")
        ],
    )


class Reply:
    """The scheduler_reply being built, in the order the real scheduler writes it."""

    def __init__(self, project: Project) -> None:
        self.head = [
            f"<scheduler_version>{SCHEDULER_VERSION}</scheduler_version>",
            "<dont_use_dcf/>",
            f"<master_url>{project.master_url}</master_url>",
        ]
        self.body: list[str] = []
        self.apps: set[int] = set()
        self.app_versions: set[int] = set()

    def text(self) -> str:
        lines = ["<scheduler_reply>", *self.head, *self.body, "</scheduler_reply>"]
        return "\n".join(lines) + "\n"


def _refuse(reply: Reply, message: str, delay: int = REFUSED_DELAY) -> str:
    reply.head += [
        f'<message priority="high">{message}</message>',
        f"<request_delay>{delay}</request_delay>",
    ]
    return reply.text()


def _host_for(
    database: Database, request: SchedulerRequest, user: Row, now: int
) -> tuple[Row, bool]:
    """The requesting host, created if new; True if its hostid must be sent."""
    host = database.one(
        "SELECT * FROM host WHERE id = ? AND userid = ?", request.hostid, user["id"]
    )
    new = host is None
    if new:
        host_id = database.insert(
            "host",
            userid=user["id"],
            create_time=now,
            domain_name=request.domain_name,
            p_ncpus=request.p_ncpus,
            p_fpops=request.p_fpops,
        )
    else:
        host_id = host["id"]
    database.update("host", host_id, rpc_seqno=request.rpc_seqno, rpc_time=now)
    return database.one("SELECT * FROM host WHERE id = ?", host_id), new


def _record_results(
    database: Database, request: SchedulerRequest, host: Row, now: int
) -> list[str]:
    acks = []
    for reported in request.results:
        acks.append(f"<result_ack>\n    <name>{reported.name}</name>\n</result_ack>")
        row = database.one("SELECT * FROM result WHERE name = ?", reported.name)
        if row is None or row["server_state"] != ServerState.IN_PROGRESS:
            continue
        if row["hostid"] != host["id"]:
            continue
        ok = reported.state == ClientState.FILES_UPLOADED
        database.update(
            "result",
            row["id"],
            server_state=ServerState.OVER,
            outcome=Outcome.SUCCESS if ok else Outcome.CLIENT_ERROR,
            client_state=reported.state,
            validate_state=ValidateState.INIT,
            exit_status=reported.exit_status,
            cpu_time=reported.cpu_time,
            elapsed_time=reported.elapsed_time,
            stderr_out=reported.stderr_out,
            xml_doc_out=reported.file_info_xml,
            received_time=now,
        )
        database.update("workunit", row["workunitid"], transition_time=now)
    return acks


def _latest_app_version(database: Database, appid: int, platform: str) -> Row | None:
    return database.one(
        "SELECT app_version.* FROM app_version JOIN platform"
        " ON platform.id = app_version.platformid"
        " WHERE appid = ? AND platform.name = ? ORDER BY version_num DESC LIMIT 1",
        appid,
        platform,
    )


def _add_app_version(
    reply: Reply, database: Database, version: Row, platform: str, host: Row
) -> None:
    if version["appid"] not in reply.apps:
        reply.apps.add(version["appid"])
        app = database.one("SELECT * FROM app WHERE id = ?", version["appid"])
        reply.body.append(
            f"<app>\n    <name>{app['name']}</name>\n"
            f"    <user_friendly_name>{app['user_friendly_name']}</user_friendly_name>\n"
            "    <non_cpu_intensive>0</non_cpu_intensive>\n</app>"
        )
    if version["id"] in reply.app_versions:
        return
    reply.app_versions.add(version["id"])
    doc = parse_fragment(version["xml_doc"])
    for info in doc.findall("file_info"):
        reply.body.append(to_text(info).rstrip())
    app_version = doc.find("app_version")
    for tag, value in (
        ("platform", platform),
        ("avg_ncpus", "1.000000"),
        ("flops", f"{host['p_fpops']:.6f}"),
        ("plan_class", version["plan_class"]),
    ):
        ET.SubElement(app_version, tag).text = value
    reply.body.append(to_text(app_version).rstrip())


def _add_job(
    project: Project,
    reply: Reply,
    database: Database,
    result: Row,
    wu: Row,
    version: Row,
    platform: str,
    host: Row,
    now: int,
) -> None:
    _add_app_version(reply, database, version, platform, host)
    app = database.one("SELECT name FROM app WHERE id = ?", wu["appid"])
    wu_doc = parse_fragment(wu["xml_doc"])
    for info in wu_doc.findall("file_info"):
        reply.body.append(to_text(info).rstrip())
    workunit = ET.Element("workunit")
    for tag in ("rsc_fpops_est", "rsc_fpops_bound", "rsc_memory_bound", "rsc_disk_bound"):
        ET.SubElement(workunit, tag).text = f"{wu[tag]:.6f}"
    ET.SubElement(workunit, "name").text = wu["name"]
    ET.SubElement(workunit, "app_name").text = app["name"]
    body = wu_doc.find("workunit")
    workunit.extend(list(body) if body is not None else [])
    reply.body.append(to_text(workunit).rstrip())

    deadline = now + wu["delay_bound"]
    result_doc = parse_fragment(result["xml_doc_in"])
    for info in result_doc.findall("file_info"):
        reply.body.append(to_text(info).rstrip())
    element = ET.Element("result")
    for tag, value in (
        ("name", result["name"]),
        ("wu_name", wu["name"]),
        ("report_deadline", str(deadline)),
        ("platform", platform),
        ("version_num", str(version["version_num"])),
        ("plan_class", version["plan_class"]),
    ):
        ET.SubElement(element, tag).text = value
    if project.config_flag(REPORT_IMMEDIATELY_FLAG):
        ET.SubElement(element, "report_immediately")
    template_result = result_doc.find("result")
    element.extend(list(template_result) if template_result is not None else [])
    reply.body.append(to_text(element).rstrip())
    database.update(
        "result",
        result["id"],
        server_state=ServerState.IN_PROGRESS,
        hostid=host["id"],
        userid=host["userid"],
        sent_time=now,
        report_deadline=deadline,
        app_version_id=version["id"],
    )
    database.update("workunit", wu["id"], transition_time=min(wu["transition_time"], deadline))


class DailyQuota:
    """A host's jobs per app version and day (host_app_version.max_jobs_per_day,
    daily_result_quota in config.xml, scaled by the host's CPUs)."""

    def __init__(self, project: Project, database: Database, host: Row, now: int) -> None:
        self.database = database
        self.host = host
        # the day is named by its local midnight
        self.day = int(time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1)))
        self.per_cpu = int(project.config_value("daily_result_quota", str(DAILY_RESULT_QUOTA)))
        self.limit = self.per_cpu * max(1, host["p_ncpus"])
        self.exceeded = False

    def take(self, app_version_id: int) -> bool:
        """Count one job for the app version; False (and send none) if over quota."""
        key = (self.host["id"], app_version_id)
        row = self.database.one(
            "SELECT * FROM host_app_version WHERE host_id = ? AND app_version_id = ?", *key
        )
        if row is None:
            self.database.insert(
                "host_app_version",
                host_id=key[0],
                app_version_id=key[1],
                max_jobs_per_day=self.per_cpu,
                day=self.day,
            )
            row = self.database.one(
                "SELECT * FROM host_app_version WHERE host_id = ? AND app_version_id = ?", *key
            )
        done = row["n_jobs_today"] if row["day"] == self.day else 0
        if done >= row["max_jobs_per_day"] * max(1, self.host["p_ncpus"]):
            self.exceeded = True
            return False
        self.database.execute(
            "UPDATE host_app_version SET n_jobs_today = ?, day = ?"
            " WHERE host_id = ? AND app_version_id = ?",
            done + 1,
            self.day,
            *key,
        )
        return True

    def delay_until_tomorrow(self, now: int) -> int:
        """Seconds until a random time in the first hour of the next day (as the real
        one, so that hosts over quota don't all come back at midnight)."""
        return self.day + 86400 - now + random.randrange(3600)


def _send_work(
    project: Project,
    reply: Reply,
    database: Database,
    request: SchedulerRequest,
    host: Row,
    now: int,
    quota: DailyQuota,
) -> int:
    wanted = max(request.work_req_seconds, request.cpu_req_secs)
    max_jobs = int(project.config_value("max_wus_to_send", str(MAX_WUS_TO_SEND)))
    candidates = database.all(
        "SELECT result.id AS result_id, workunit.id AS wu_id FROM result"
        " JOIN workunit ON workunit.id = result.workunitid"
        " WHERE result.server_state = ? AND result.in_feeder_cache = 1"
        " AND workunit.error_mask = 0 AND workunit.canonical_resultid = 0"
        " ORDER BY result.priority DESC, result.id",
        ServerState.UNSENT,
    )
    sent, seconds, wus = 0, 0.0, set()
    for candidate in candidates:
        if sent >= max_jobs or (seconds >= wanted and sent >= request.cpu_req_instances):
            break
        wu = database.one("SELECT * FROM workunit WHERE id = ?", candidate["wu_id"])
        already = database.one(
            "SELECT id FROM result WHERE workunitid = ? AND hostid = ?", wu["id"], host["id"]
        )
        if already or wu["id"] in wus:
            continue
        version = _latest_app_version(database, wu["appid"], request.platform)
        if version is None:
            continue
        result = database.one("SELECT * FROM result WHERE id = ?", candidate["result_id"])
        if not quota.take(version["id"]):
            continue
        _add_job(project, reply, database, result, wu, version, request.platform, host, now)
        wus.add(wu["id"])
        sent += 1
        seconds += wu["rsc_fpops_est"] / host["p_fpops"]
    return sent


#: Why a task the client has is aborted (handle_request.cpp's ABORT_REASON_*).
ABORT_NOT_FOUND = "result not in request"
ABORT_CANCELLED = "WU cancelled"
ABORT_ASSIMILATED = "WU assimilated"
ABORT_TIMED_OUT = "result timed out"


def _result_aborts(database: Database, request: SchedulerRequest, host: Row) -> list[str]:
    """<result_abort>s and <result_abort_if_not_started>s (send_result_abort)."""
    lines = []
    for name in request.other_results:
        row = database.one(
            "SELECT result.server_state, result.outcome, workunit.error_mask,"
            " workunit.assimilate_state FROM result JOIN workunit"
            " ON workunit.id = result.workunitid WHERE result.name = ? AND result.hostid = ?",
            name,
            host["id"],
        )
        if row is None or row["error_mask"] & WuError.CANCELLED:
            lines.append(f"<result_abort>\n    <name>{name}</name>\n</result_abort>")
            lines.append(f'<message priority="low">Result {name} is no longer usable</message>')
        elif row["assimilate_state"] == AssimilateState.DONE or (
            row["server_state"] == ServerState.OVER and row["outcome"] == Outcome.NO_REPLY
        ):
            lines.append(
                "<result_abort_if_not_started>\n"
                f"    <name>{name}</name>\n</result_abort_if_not_started>"
            )
    return lines


def schedule(project: Project, database: Database, request: SchedulerRequest, now: int) -> str:
    """The reply to one scheduler request (records what it reports and sends)."""
    reply = Reply(project)
    if (project.root / STOP_SCHED_FILE).exists():
        reply.head.append("<project_is_down/>")
        return _refuse(reply, "Project is temporarily shut down for maintenance")
    user = database.one("SELECT * FROM user WHERE authenticator = ?", request.authenticator)
    if user is None:
        return _refuse(
            reply, "Invalid or missing account key.  To fix, remove and add this project."
        )
    interval = int(project.config_value("min_sendwork_interval", "0"))
    next_rpc = int(project.config_value("next_rpc_delay", "0"))
    messages: list[str] = []
    with database.transaction():
        previous = database.one("SELECT rpc_time FROM host WHERE id = ?", request.hostid)
        host, new_host = _host_for(database, request, user, now)
        acks = _record_results(database, request, host, now)
        too_soon = previous is not None and now - previous["rpc_time"] < interval
        quota = DailyQuota(project, database, host, now)
        sent = 0
        if request.wants_work and too_soon:
            messages.append(
                '<message priority="low">Not sending work - last request too recent:'
                f" {now - previous['rpc_time']} sec</message>"
            )
            # the real one adds 1% in case the client's clock runs a little fast
            interval = int(interval * 1.01) + 1
        elif request.wants_work:
            sent = _send_work(project, reply, database, request, host, now, quota)
        aborts = (
            _result_aborts(database, request, host)
            if project.config_flag("send_result_abort")
            else []
        )
    delay = interval
    if request.wants_work and not sent and quota.exceeded:
        messages.append(
            f'<message priority="low">(reached daily quota of {quota.limit} tasks)</message>'
        )
        delay = max(delay, quota.delay_until_tomorrow(now))
    elif request.wants_work and not sent and not too_soon:
        messages.append('<message priority="low">Project has no tasks available</message>')
    reply.head += [
        *([f"<request_delay>{delay}</request_delay>"] if delay else []),
        *([f"<next_rpc_delay>{next_rpc}</next_rpc_delay>"] if next_rpc else []),
        f"<project_name>{project.long_name}</project_name>",
        f"<userid>{user['id']}</userid>",
        f"<user_name>{user['name']}</user_name>",
        f"<user_create_time>{user['create_time']}</user_create_time>",
        *([f"<hostid>{host['id']}</hostid>"] if new_host else []),
        f"<host_create_time>{host['create_time']}</host_create_time>",
        *messages,
    ]
    if not request.has_code_sign_key:
        key = (project.key_dir / PUBLIC_KEY_FILE).read_text()
        reply.head.append(f"<code_sign_key>\n{key}</code_sign_key>")
    reply.head += acks
    reply.head += aborts
    return reply.text()


def _keep_exchange(project: Project, request_text: str, reply_text: str) -> None:
    """Save request and reply if config.xml has <debug_req_reply_dir> (as the real one)."""
    directory = project.config_value("debug_req_reply_dir")
    if not directory:
        return
    target = project.root / directory
    target.mkdir(parents=True, exist_ok=True)
    stamp = f"{time.time():.6f}"
    (target / f"{stamp}_sched_request.xml").write_text(request_text)
    (target / f"{stamp}_sched_reply.xml").write_text(reply_text)


def handle_scheduler(project: Project, request: Request) -> Response:
    text = request.body.decode(errors="replace")
    try:
        parsed = parse_request(text)
    except (ET.ParseError, ValueError) as error:
        reply = _refuse(Reply(project), f"Bad scheduler request: {error}")
    else:
        try:
            with project.connect() as database:
                reply = schedule(project, database, parsed, int(time.time()))
        except DatabaseDown:
            reply = Reply(project)
            reply.head.append("<project_is_down/>")
            reply = _refuse(reply, "Server can't open database", MAINTENANCE_DELAY_SECONDS)
    _keep_exchange(project, text, reply)
    return xml_response(reply)


ENDPOINTS = [Endpoint("POST", Area.CGI, "cgi", handle_scheduler)]
