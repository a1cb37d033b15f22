"""`Sandbox.database_down()`: the project's tools, scheduler, pages and daemons fail as
BOINC's do when MySQL is down, and work again once it is back."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import requests
from conftest import APP

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.control import daemon_states
from pymw.testing.boinc_sandbox.processes import wait_until


def _create_work(sandbox: Sandbox, name: str):
    return sandbox.run_tool(
        "create_work", "--appname", APP, "--wu_name", name, "in.txt", check=False
    )


def _scheduler_reply(sandbox: Sandbox, reference) -> str:
    body = (reference / "sched_request_asking_work.xml").read_bytes()
    return requests.post(sandbox.project.scheduler_url, data=body, timeout=30).text


def test_tools_and_scheduler_fail_like_boincs_while_it_is_down(running, reference, tmp_path):
    (tmp_path / "in.txt").write_text("x")
    running.run_tool("stage_file", str(tmp_path / "in.txt"))
    with running.database_down():
        failed = _create_work(running, "while_down")
        reply = _scheduler_reply(running, reference)
        query = requests.post(
            running.url + "submit_rpc_handler.php",
            data={"request": "<query_batch><authenticator>x</authenticator></query_batch>"},
            timeout=30,
        )
        # The daemons lose their connection and exit, as BOINC's do.
        assert wait_until(lambda: not any(pid for _, pid in daemon_states(running.project)), 15)
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        "create_work: error opening database: can't connect to database"
    )
    assert "Server can't open database" in reply and "<project_is_down/>" in reply
    assert ET.fromstring(query.text).findtext("error/error_msg") == "Can't connect to database"
    # Back up: what cron's `bin/start --cron` does restarted the daemons.
    assert all(pid for _, pid in daemon_states(running.project))
    assert _create_work(running, "after").returncode == 0
    assert "Server can't open database" not in _scheduler_reply(running, reference)
