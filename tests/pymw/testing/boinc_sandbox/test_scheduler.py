"""Scheduler replies to the real client's captured requests, and the real scheduler's
strictness: lazy reporting, min_sendwork_interval, send_result_abort, the daily quota."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET

from conftest import APP, add_test_app

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import AssimilateState, Outcome, ServerState, WuError
from pymw.testing.boinc_sandbox.daemons import feeder, transitioner
from pymw.testing.boinc_sandbox.daemons.common import Options
from pymw.testing.boinc_sandbox.endpoints.scheduler import parse_request, schedule
from pymw.testing.boinc_sandbox.templates import parse_fragment

REFERENCE_AUTH = "0123456789abcdef0123456789abcdef"


def _jobs_ready(sandbox, tmp_path, count: int = 1, first: int = 1) -> None:
    """Jobs wu<first>... ready to send (the captured request asks for 36 of them)."""
    source = tmp_path / "in.txt"
    source.write_text("hello")
    sandbox.run_tool("stage_file", str(source))
    lines = "".join(f"--wu_name wu{i} in.txt\n" for i in range(first, first + count))
    sandbox.run_tool("create_work", "--appname", APP, "--stdin", stdin=lines)
    with sandbox.project.connect() as database:
        transitioner.setup(sandbox.project, Options())(database)
        feeder.setup(sandbox.project, Options())(database)
        database.execute("UPDATE user SET authenticator = ?", REFERENCE_AUTH)


def _one_job_ready(sandbox, tmp_path) -> None:
    _jobs_ready(sandbox, tmp_path, 1)


def _ask(sandbox, reference, now: int, other_results: tuple[str, ...] = ()) -> ET.Element:
    """The reply to the captured work request (the host it creates is host 1)."""
    text = (reference / "sched_request_asking_work.xml").read_text()
    others = "".join(f"<other_result><name>{n}</name></other_result>" for n in other_results)
    text = text.replace("<other_results>", "<other_results>" + others)
    with sandbox.project.connect() as database:
        reply = schedule(sandbox.project, database, parse_request(text), now)
    return parse_fragment(reply).find("scheduler_reply")


def test_reply_to_reference_work_request(app_sandbox, reference, tmp_path):
    _one_job_ready(app_sandbox, tmp_path)
    text = (reference / "sched_request_asking_work.xml").read_text()
    request = parse_request(
        text.replace("<code_sign_key>", "<x>").replace("</code_sign_key>", "</x>")
    )
    with app_sandbox.project.connect() as database:
        reply = schedule(app_sandbox.project, database, request, int(time.time()))
    root = parse_fragment(reply).find("scheduler_reply")
    tags = [child.tag for child in root]
    assert "hostid" in tags and "code_sign_key" in tags
    order = [t for t in tags if t in ("app", "file_info", "app_version", "workunit", "result")]
    assert order == [
        "app",
        "file_info",
        "app_version",
        "file_info",
        "workunit",
        "file_info",
        "result",
    ]
    executable = root.findall("file_info")[0]
    for tag in ("url", "nbytes", "md5_cksum", "file_signature"):
        assert executable.findtext(tag), tag
    assert executable.find("executable") is not None
    version = root.find("app_version")
    assert version.findtext("api_version") == "7.20.5"
    assert version.findtext("platform") == "x86_64-pc-linux-gnu"
    assert root.find("workunit/file_ref/open_name").text == "in"
    output = root.findall("file_info")[2]
    assert "file_upload_handler" in output.findtext("url") and output.findtext("max_nbytes")
    result = root.find("result")
    assert result.findtext("wu_name") == "wu1"
    # The same tags as the real reply, whatever their values.
    real_text = (reference / "sched_reply_with_work.xml").read_text()  # has a raw "&"
    real = parse_fragment(re.search(r"<result>.*</result>", real_text, re.S).group(0))
    real_result = {c.tag for c in real.find("result")}
    assert real_result <= {c.tag for c in result}
    # A client that has the key does not get it again.
    again = schedule(app_sandbox.project, app_sandbox.project.connect(), parse_request(text), 0)
    assert "<code_sign_key>" not in again


def test_reported_result_is_recorded_and_acknowledged(app_sandbox, reference, tmp_path):
    _one_job_ready(app_sandbox, tmp_path)
    asking = parse_request((reference / "sched_request_asking_work.xml").read_text())
    with app_sandbox.project.connect() as database:
        reply = schedule(app_sandbox.project, database, asking, int(time.time()))
        hostid = re.search(r"<hostid>(\d+)</hostid>", reply).group(1)
        text = (reference / "sched_request_reporting_result.xml").read_text()
        text = text.replace("golden_wu_1795306365_0", "wu1_0")
        text = re.sub(r"<hostid>\d+</hostid>", f"<hostid>{hostid}</hostid>", text)
        request = parse_request(text)
        assert request.results[0].exit_status == 0 and request.results[0].state == 5
        assert "called boinc_finish(0)" in request.results[0].stderr_out
        reply = schedule(app_sandbox.project, database, request, int(time.time()))
        assert "<result_ack>\n    <name>wu1_0</name>\n</result_ack>" in reply
        row = database.one("SELECT * FROM result WHERE name = 'wu1_0'")
    assert row["server_state"] == ServerState.OVER and row["outcome"] == Outcome.SUCCESS
    assert "boinc_finish" in row["stderr_out"]


def test_reporting_is_lazy_with_the_real_projects_delays(app_sandbox, reference, tmp_path):
    """No <report_immediately/>, <request_delay> 6 and no <next_rpc_delay>, as the real
    project's scheduler: a client that stays up reports on a later RPC."""
    _one_job_ready(app_sandbox, tmp_path)
    reply = _ask(app_sandbox, reference, int(time.time()))
    assert reply.find("result/wu_name").text == "wu1"
    assert reply.find("result/report_immediately") is None
    assert reply.findtext("request_delay") == "6" and reply.find("next_rpc_delay") is None
    config = (app_sandbox.project_dir / "config.xml").read_text()
    assert "<min_sendwork_interval>6<" in config and "next_rpc_delay" not in config


def test_report_immediately_only_when_asked_for_by_name(base_dir, tmp_path, reference):
    sandbox = Sandbox.open(base_dir / "eager", report_immediately=True)
    add_test_app(sandbox, tmp_path, f"sample_assimilator -d 3 --app {APP}")
    _one_job_ready(sandbox, tmp_path)
    reply = _ask(sandbox, reference, int(time.time()))
    assert reply.find("result/report_immediately") is not None


def test_no_work_to_a_host_that_asks_again_too_soon(app_sandbox, reference, tmp_path):
    _jobs_ready(app_sandbox, tmp_path, 1)
    now = int(time.time())
    assert len(_ask(app_sandbox, reference, now).findall("result")) == 1
    _jobs_ready(app_sandbox, tmp_path, 1, first=2)
    again = _ask(app_sandbox, reference, now + 3)
    assert again.findall("result") == []
    assert "last request too recent: 3 sec" in "".join(m.text for m in again.iter("message"))
    assert int(again.findtext("request_delay")) > 6
    assert len(_ask(app_sandbox, reference, now + 10).findall("result")) == 1


def test_result_abort_for_tasks_the_server_no_longer_needs(app_sandbox, reference, tmp_path):
    _jobs_ready(app_sandbox, tmp_path, 2)
    now = int(time.time())
    _ask(app_sandbox, reference, now)  # wu1_0 and wu2_0 go to host 1
    with app_sandbox.project.connect() as database:
        wus = {r["name"]: r["id"] for r in database.all("SELECT * FROM workunit")}
        database.update("workunit", wus["wu1"], assimilate_state=AssimilateState.DONE)
        database.update("workunit", wus["wu2"], error_mask=WuError.CANCELLED)
    reply = _ask(app_sandbox, reference, now + 10, ("wu1_0", "wu2_0", "unknown_0"))
    aborted = {e.findtext("name") for e in reply.iter("result_abort")}
    if_not_started = {e.findtext("name") for e in reply.iter("result_abort_if_not_started")}
    assert aborted == {"wu2_0", "unknown_0"} and if_not_started == {"wu1_0"}
    app_sandbox.project.set_config_value("send_result_abort", "0")
    quiet = _ask(app_sandbox, reference, now + 20, ("wu1_0", "wu2_0", "unknown_0"))
    assert quiet.find("result_abort") is None and quiet.find("result_abort_if_not_started") is None


def test_a_host_past_its_daily_quota_gets_no_work(app_sandbox, reference, tmp_path):
    config = (app_sandbox.project_dir / "config.xml").read_text()
    assert "<daily_result_quota>500<" in config and "<send_result_abort>1<" in config
    app_sandbox.project.set_config_value("daily_result_quota", "1")  # a CPU: 2 for this 2-CPU host
    _jobs_ready(app_sandbox, tmp_path, 3)
    now = int(time.time())
    assert len(_ask(app_sandbox, reference, now).findall("result")) == 2
    over = _ask(app_sandbox, reference, now + 10)
    assert over.findall("result") == []
    messages = "".join(m.text for m in over.iter("message"))
    assert "(reached daily quota of 2 tasks)" in messages
    # come back tomorrow, within its first hour (not "in an hour": the test may run at 23:50)
    asked_at = now + 10
    midnight = time.mktime((*time.localtime(asked_at)[:3], 0, 0, 0, 0, 0, -1)) + 86400
    assert 0 <= asked_at + int(over.findtext("request_delay")) - midnight < 3600
    with app_sandbox.project.connect() as database:
        unsent = database.one("SELECT COUNT(*) FROM result WHERE server_state = ?", 2)[0]
    assert unsent == 1
