"""Remote job submission pages: submit_rpc_handler.php, job_file.php, get_output3.php.

Raw HTTP against the sandbox, held against the captured BOINC 8.3 exchanges in
tests/data/boinc_reference/remote/; then one slow round trip with the real client.
"""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import APP, OUTPUT_TEMPLATE, REFERENCE

from pymw.interfaces.boinc.rpc import BatchSpec, BatchState, BoincRpcClient, InputFile, JobSpec
from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import ServerState
from pymw.testing.boinc_sandbox.endpoints.submit_util import XML_HEADER
from pymw.testing.boinc_sandbox.http_server import serve_in_thread
from pymw.testing.boinc_sandbox.jobs import assimilated_output_path
from pymw.testing.boinc_sandbox.processes import wait_until
from pymw.testing.boinc_sandbox.templates import process_result_template

REMOTE = REFERENCE / "remote"
CAPTURED_AUTHENTICATOR = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def served(remote_sandbox: Sandbox) -> Iterator[Sandbox]:
    server = serve_in_thread(remote_sandbox.project)
    yield remote_sandbox
    server.shutdown()
    server.server_close()


def _post(sandbox: Sandbox, page: str, request: str, **kwargs) -> str:
    reply = requests.post(sandbox.url + page, data={"request": request}, timeout=30, **kwargs)
    assert reply.status_code == 200
    return reply.text


def _captured(sandbox: Sandbox, name: str, batch_id: int | None = None) -> str:
    """A captured request, sent by the sandbox's submitter for the test app."""
    text = (REMOTE / name).read_text().replace(CAPTURED_AUTHENTICATOR, sandbox.authenticator)
    text = text.replace("<app_name>uppercase</app_name>", f"<app_name>{APP}</app_name>")
    if batch_id is not None:
        text = text.replace("<batch_id>4</batch_id>", f"<batch_id>{batch_id}</batch_id>")
    return text


def _submit_captured(sandbox: Sandbox) -> int:
    reply = _post(sandbox, "submit_rpc_handler.php", _captured(sandbox, "submit_batch_request.xml"))
    assert reply.startswith(XML_HEADER)
    root = ET.fromstring(reply)
    assert [child.tag for child in root] == ["batch_id"]
    return int(root.findtext("batch_id"))


def _tags(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def _finish_job(sandbox: Sandbox, wu_name: str, output: bytes) -> int:
    """Make a job look validated and moved by sample_assimilator; returns the result id."""
    project = sandbox.project
    with project.connect() as database:
        wu = database.one("SELECT * FROM workunit WHERE name = ?", wu_name)
        result_name = f"{wu_name}_0"
        result_id = database.insert(
            "result",
            create_time=int(time.time()),
            workunitid=wu["id"],
            server_state=ServerState.OVER,
            outcome=1,
            name=result_name,
            xml_doc_in=process_result_template(OUTPUT_TEMPLATE, result_name, project.upload_url),
            appid=wu["appid"],
            batch=wu["batch"],
            cpu_time=1.5,
        )
        database.update("workunit", wu["id"], canonical_resultid=result_id)
    path = assimilated_output_path(project, wu["batch"], wu_name, "out")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(output)
    return result_id


def test_submit_batch_stages_inline_input_and_runs_create_work(served):
    batch_id = _submit_captured(served)
    data = b"remote golden input\n"
    staged = served.project.download_path(f"jf_{hashlib.md5(data).hexdigest()}", create=False)
    assert staged.read_bytes() == data
    with served.project.connect() as database:
        (wu,) = database.all("SELECT * FROM workunit WHERE batch = ?", batch_id)
        batch = database.one("SELECT * FROM batch WHERE id = ?", batch_id)
    assert wu["name"] == "ref_batch_1795306430_j0" and "-cpu_time 2" in wu["xml_doc"]
    assert staged.name in wu["xml_doc"]
    assert (batch["state"], batch["njobs"], batch["name"]) == (
        BatchState.IN_PROGRESS,
        1,
        "ref_batch_1795306430",
    )


def test_query_batch_has_the_captured_shape_and_completes_from_workunits(served):
    batch_id = _submit_captured(served)
    request = _captured(served, "query_batch_done_request.xml", batch_id)
    running = ET.fromstring(_post(served, "submit_rpc_handler.php", request))
    assert running.findtext("state") == "1" and running.findtext("job/status") == "queued"
    _finish_job(served, "ref_batch_1795306430_j0", b"OUT")
    done = ET.fromstring(_post(served, "submit_rpc_handler.php", request))
    captured = ET.fromstring((REMOTE / "query_batch_done_reply.xml").read_text())
    assert _tags(done) == _tags(captured)
    assert _tags(done.find("job")) == _tags(captured.find("job"))
    assert (done.findtext("state"), done.findtext("fraction_done")) == ("2", "1")
    assert done.findtext("job/status") == "done" and done.findtext("job/cpu_time") == "1.5"


def test_errors_have_the_real_format(served):
    unknown = _post(
        served, "submit_rpc_handler.php", _captured(served, "error_unknown_batch_request.xml")
    )
    assert unknown == (REMOTE / "error_unknown_batch_reply.xml").read_text()
    bare = ET.fromstring(_post(served, "submit_rpc_handler.php", "<frobnicate/>"))
    assert bare.tag == "error" and bare.findtext("error_msg") == "bad command"
    garbage = ET.fromstring(_post(served, "submit_rpc_handler.php", "<query_batch>"))
    assert garbage.findtext("error_msg") == "can't parse request message"


def test_retire_batch_reply_and_state(served):
    batch_id = _submit_captured(served)
    reply = _post(
        served, "submit_rpc_handler.php", _captured(served, "retire_batch_request.xml", batch_id)
    )
    captured = ET.fromstring((REMOTE / "retire_batch_reply.xml").read_text())
    assert _tags(ET.fromstring(reply)) == _tags(captured) == ["success"]
    with served.project.connect() as database:
        assert database.one("SELECT state FROM batch WHERE id = ?", batch_id)["state"] == 4
        assert (
            database.one("SELECT assimilate_state FROM workunit WHERE batch = ?", batch_id)[0] == 2
        )


def test_submit_rights_all_or_per_app(served):
    with served.project.connect() as database:
        volunteer = database.add_user("volunteer", "v@127.0.0.1")
        scientist = database.add_user("scientist", "s@127.0.0.1")
        scientist_id = database.one("SELECT id FROM user WHERE authenticator = ?", scientist)["id"]
        database.insert("user_submit", user_id=scientist_id, submit_all=0)
        app_id = database.one("SELECT id FROM app WHERE name = ?", APP)["id"]
    request = _captured(served, "submit_batch_request.xml").replace(served.authenticator, scientist)
    denied = ET.fromstring(_post(served, "submit_rpc_handler.php", request))
    assert denied.findtext("error/error_msg") == "no submit access"
    with served.project.connect() as database:
        database.insert("user_submit_app", user_id=scientist_id, app_id=app_id)
    assert ET.fromstring(_post(served, "submit_rpc_handler.php", request)).findtext("batch_id")
    as_volunteer = request.replace(scientist, volunteer).replace("_j0", "_j1")
    refused = ET.fromstring(_post(served, "submit_rpc_handler.php", as_volunteer))
    assert refused.findtext("error/error_msg") == "no submit access"


def test_create_work_failure_is_reported_and_the_batch_stays_init(served):
    _submit_captured(served)
    again = ET.fromstring(
        _post(served, "submit_rpc_handler.php", _captured(served, "submit_batch_request.xml"))
    )
    message = again.findtext("error/error_msg")
    assert message.startswith("create_work failed") and "already exists" in message
    with served.project.connect() as database:
        states = [r["state"] for r in database.all("SELECT state FROM batch ORDER BY id")]
    assert states == [BatchState.IN_PROGRESS, BatchState.INIT]


def _files_request(sandbox: Sandbox, operation: str, names: list[str]) -> str:
    names_xml = "".join(f"<phys_name>{n}</phys_name>" for n in names)
    authenticator = f"<authenticator>{sandbox.authenticator}</authenticator>"
    return f"<{operation}>{authenticator}{names_xml}</{operation}>"


def test_job_file_query_and_multipart_upload(served):
    data = b"\x00binary input\xff"
    name = f"jf_{hashlib.md5(data).hexdigest()}"
    absent = ET.fromstring(
        _post(served, "job_file.php", _files_request(served, "query_files", [name]))
    )
    assert [f.text for f in absent.iterfind("absent_files/file")] == ["0"]
    reply = _post(
        served,
        "job_file.php",
        _files_request(served, "upload_files", [name]),
        files={"file_0": (name, data, "application/octet-stream")},
    )
    assert ET.fromstring(reply).find("success") is not None
    assert served.project.download_path(name, create=False).read_bytes() == data
    present = ET.fromstring(
        _post(served, "job_file.php", _files_request(served, "query_files", [name]))
    )
    assert present.find("absent_files/file") is None
    bad = _post(
        served,
        "job_file.php",
        _files_request(served, "upload_files", ["x"]),
        files={"file_0": ("../escape", b"x", "application/octet-stream")},
    )
    assert "not a valid filename" in bad


def test_get_output3_serves_moved_outputs_to_anyone(served):
    _submit_captured(served)
    result_id = _finish_job(served, "ref_batch_1795306430_j0", b"<A & B>\n")
    url = f"{served.url}get_output3.php?action=get_file&result_id={result_id}&index=0"
    # Like the real page: no login, no owner check (no cookie is sent at all).
    download = requests.get(url + "&download=1", allow_redirects=False, timeout=30)
    assert download.status_code == 200 and download.content == b"<A & B>\n"
    assert download.headers["Content-Disposition"].startswith("attachment")
    shown = requests.get(url, timeout=30).text
    assert shown == "<pre>\n&lt;A &amp; B&gt;\n</pre>\n"
    bad_index = requests.get(url.replace("index=0", "index=1"), timeout=30)
    assert "bad index" in bad_index.text
    assert "no result" in requests.get(url.replace(f"={result_id}&", "=999&"), timeout=30).text


def _validated_not_assimilated(sandbox: Sandbox, wu_name: str) -> int:
    """The validator's state of a job: canonical result set, assimilator not run yet."""
    result_id = _finish_job(sandbox, wu_name, b"OUT")
    with sandbox.project.connect() as database:
        batch = database.one("SELECT batch FROM workunit WHERE name = ?", wu_name)["batch"]
    assimilated_output_path(sandbox.project, batch, wu_name, "out").unlink()
    return result_id


def test_query_batch_says_done_before_the_output_can_be_fetched(served, capfd):
    """A canonical result makes the job done; get_output3 then answers an empty 200."""
    batch_id = _submit_captured(served)
    result_id = _validated_not_assimilated(served, "ref_batch_1795306430_j0")
    with served.project.connect() as database:
        wu = database.one("SELECT * FROM workunit WHERE batch = ?", batch_id)
    assert wu["assimilate_state"] != 2  # not assimilated
    request = _captured(served, "query_batch_done_request.xml", batch_id)
    done = ET.fromstring(_post(served, "submit_rpc_handler.php", request))
    assert done.findtext("state") == "2" and done.findtext("job/status") == "done"
    url = f"{served.url}get_output3.php?action=get_file&result_id={result_id}&index=0&download=1"
    reply = requests.get(url, timeout=30)
    assert reply.status_code == 200 and reply.content == b""
    assert reply.headers["Content-Length"] == "0"
    assert reply.headers["Content-Disposition"].startswith("attachment")
    assert "readfile(" in capfd.readouterr().err  # PHP's warning, in the web side's log


@pytest.mark.slow
def test_remote_round_trip_with_the_real_client(remote_sandbox: Sandbox):
    """submit_batch (inline input) -> real client runs it -> query_batch state 2 ->
    get_output3 gives the uppercased input -> retire_batch gives state 4."""
    job = JobSpec("remote_j0", files=[InputFile.inline("remote golden input\n")])
    remote_sandbox.grant_web_download_write()  # inline inputs are written to download/
    try:
        remote_sandbox.start()
        with BoincRpcClient(remote_sandbox.url, remote_sandbox.authenticator) as rpc:
            batch_id = rpc.submit_batch(BatchSpec(APP, [job], batch_name="remote_batch"))
            assert remote_sandbox.wait_for("results_ready_to_send", 1, timeout=20)
            client = remote_sandbox.add_client(exit_when_idle=True)
            assert client.wait_exit(timeout=60), client.log()[-3000:]
            assert remote_sandbox.wait_for("workunits_assimilated", 1, timeout=20)
            assert wait_until(lambda: rpc.query_batch(batch_id).state == BatchState.COMPLETE, 10)
            (done,) = rpc.query_batch(batch_id).jobs
            output = rpc.get_output(done.canonical_instance_id, 0)
            assert output == (REMOTE / "get_output3_file.txt").read_bytes()
            rpc.retire_batch(batch_id)
            assert rpc.query_batch(batch_id).state == BatchState.RETIRED
    finally:
        remote_sandbox.stop()


def test_reference_output_is_the_uppercased_input():
    """The slow test compares with the captured output: the test app must upcase too."""
    captured_input = ET.fromstring((REMOTE / "submit_batch_request.xml").read_text())
    assert (
        captured_input.findtext(".//source").upper().encode()
        == Path(REMOTE / "get_output3_file.txt").read_bytes()
    )
