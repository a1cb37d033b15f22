"""Scheduler replies to the real client's captured requests."""

from __future__ import annotations

import re
import time

from conftest import APP

from pymw.testing.boinc_sandbox.constants import Outcome, ServerState
from pymw.testing.boinc_sandbox.daemons import feeder, transitioner
from pymw.testing.boinc_sandbox.daemons.common import Options
from pymw.testing.boinc_sandbox.endpoints.scheduler import parse_request, schedule
from pymw.testing.boinc_sandbox.templates import parse_fragment

REFERENCE_AUTH = "0123456789abcdef0123456789abcdef"


def _one_job_ready(sandbox, tmp_path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello")
    sandbox.run_tool("stage_file", str(source))
    sandbox.run_tool("create_work", "--appname", APP, "--wu_name", "wu1", "in.txt")
    with sandbox.project.connect() as database:
        transitioner.setup(sandbox.project, Options())(database)
        feeder.setup(sandbox.project, Options())(database)
        database.execute("UPDATE user SET authenticator = ?", REFERENCE_AUTH)


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
    assert result.find("report_immediately") is not None and result.findtext("wu_name") == "wu1"
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
