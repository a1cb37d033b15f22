"""Remote job submission client: requests and replies against captured BOINC 8.3 ones,
errors, the output size limit, retries, and a real sandbox HTTP side."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fake_boinc_project import FakeProject as FakeRemoteProject
from fake_boinc_project import serve

from pymw.interfaces.boinc.rpc import (
    UPLOAD_MAX_FILES,
    BadUrlError,
    BatchSpec,
    BatchState,
    BoincRpcClient,
    BoincUnreachableError,
    HttpStatusError,
    InputFile,
    JobSpec,
    MalformedReplyError,
    OutputNotReadyError,
    OutputTooLargeError,
    OutputUnavailableError,
    RemoteError,
    parse_reply,
    physical_name,
)
from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.http_server import serve_in_thread
from pymw.testing.boinc_sandbox.processes import free_port

REFERENCE = Path(__file__).resolve().parents[3] / "data" / "boinc_reference"
REMOTE = REFERENCE / "remote"
AUTHENTICATOR = "0123456789abcdef0123456789abcdef"
APP = "upcase"


@dataclass
class CannedReply:
    content: bytes


def _recording_client(reply_file: str) -> tuple[BoincRpcClient, list[dict]]:
    """A client whose transport records each request and answers with a captured reply."""
    client = BoincRpcClient("https://boinc.example.org/proj", AUTHENTICATOR)
    sent: list[dict] = []

    def send(method: str, url: str, **kwargs) -> CannedReply:
        sent.append({"method": method, "url": url, **kwargs})
        return CannedReply((REMOTE / reply_file).read_bytes())

    client._send = send  # type: ignore[method-assign]
    return client, sent


def test_submit_batch_request_and_reply_match_the_captured_ones():
    client, sent = _recording_client("submit_batch_reply.xml")
    job = JobSpec(
        name="ref_batch_1795306430_j0",
        command_line="-cpu_time 2",
        files=[InputFile.inline("remote golden input\n")],
    )
    batch = BatchSpec("uppercase", [job], batch_name="ref_batch_1795306430")
    assert client.submit_batch(batch) == 4
    assert sent[0]["url"] == "https://boinc.example.org/proj/submit_rpc_handler.php"
    assert sent[0]["data"] == {"request": (REMOTE / "submit_batch_request.xml").read_text()}
    assert sent[0]["idempotent"] is False


def test_query_batch_request_and_reply_match_the_captured_ones():
    client, sent = _recording_client("query_batch_done_reply.xml")
    status = client.query_batch(4)
    assert sent[0]["data"]["request"] == (REMOTE / "query_batch_done_request.xml").read_text()
    assert (status.id, status.state, status.njobs, status.nerror_jobs) == (
        4,
        BatchState.COMPLETE,
        1,
        0,
    )
    assert status.fraction_done == 1.0 and status.app_name == "uppercase"
    (job,) = status.jobs
    assert (job.id, job.canonical_instance_id, job.status) == (11, 11, "done")
    assert job.cpu_time == pytest.approx(1.920179)


def test_retire_batch_request_matches_the_captured_one():
    client, sent = _recording_client("retire_batch_reply.xml")
    client.retire_batch(4)
    assert sent[0]["data"]["request"] == (REMOTE / "retire_batch_request.xml").read_text()


def test_error_inside_the_operation_becomes_remote_error():
    client, sent = _recording_client("error_unknown_batch_reply.xml")
    with pytest.raises(RemoteError, match="no such batch") as caught:
        client.query_batch(999999, job_details=False)
    assert (caught.value.num, caught.value.message) == (-1, "no such batch")
    assert sent[0]["data"]["request"] == (REMOTE / "error_unknown_batch_request.xml").read_text()


def test_parse_reply_errors():
    bare = b"<error><error_num>-1</error_num><error_msg>bad command</error_msg></error>"
    with pytest.raises(RemoteError, match="bad command"):
        parse_reply(bare, "query_batch")
    bomb = b'<!DOCTYPE a [<!ENTITY x "xx">]><query_batch>&x;</query_batch>'
    with pytest.raises(MalformedReplyError):
        parse_reply(bomb, "query_batch")
    with pytest.raises(MalformedReplyError, match="not XML"):
        parse_reply(b"<html>Fatal error", "query_batch")
    with pytest.raises(MalformedReplyError, match="<retire_batch>"):
        parse_reply((REMOTE / "retire_batch_reply.xml").read_bytes(), "abort_batch")


def test_inline_refuses_what_xml_cannot_carry():
    with pytest.raises(ValueError):
        InputFile.inline("a\r\nb")
    with pytest.raises(ValueError):
        InputFile.inline("nul\x00")


class FakeProject(BaseHTTPRequestHandler):
    """Answers GET with `body` (as an attachment) and POST with 503 then a reply.

    `declared_length` announces a Content-Length other than the body's (a transfer that
    breaks off); `with_length=False` sends none (the body ends with the connection)."""

    body = b""
    with_length = True
    declared_length: int | None = None
    posts = 0

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Disposition", "attachment; filename=out")
        if self.with_length:
            length = len(self.body) if self.declared_length is None else self.declared_length
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(self.body)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts += 1
        if type(self).posts == 1:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        reply = (REMOTE / "retire_batch_reply.xml").read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_project() -> Iterator[tuple[type[FakeProject], BoincRpcClient]]:
    handler = type("Handler", (FakeProject,), {"posts": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = BoincRpcClient(
        f"http://127.0.0.1:{server.server_port}/proj/", AUTHENTICATOR, backoff_factor=0
    )
    yield handler, client
    client.close()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("with_length", [True, False])
def test_output_over_the_limit_is_refused(fake_project, with_length, tmp_path):
    handler, client = fake_project
    handler.body, handler.with_length = b"x" * 300_000, with_length
    assert client.get_output(1, 0, max_bytes=300_000) == handler.body
    with pytest.raises(OutputTooLargeError):
        client.get_output(1, 0, max_bytes=100_000)
    with pytest.raises(OutputTooLargeError):
        client.download_output(1, 0, tmp_path / "out", max_bytes=100_000)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("with_length", [True, False])
def test_an_empty_output_file_is_not_ready_never_an_output(fake_project, with_length, tmp_path):
    """get_output3.php's answer before the assimilator ran: 200, attachment, no bytes."""
    handler, client = fake_project
    handler.body, handler.with_length = b"", with_length
    with pytest.raises(OutputNotReadyError, match="empty"):
        client.get_output(1, 0)
    with pytest.raises(OutputNotReadyError):
        client.download_output(1, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_output_shorter_than_announced_is_not_ready(fake_project):
    handler, client = fake_project
    handler.body, handler.declared_length = b"x" * 10, 1000
    with pytest.raises(OutputNotReadyError, match="closed after 10 of 1000 bytes"):
        client.get_output(1, 0)


def test_idempotent_calls_retry_5xx_and_submit_does_not(fake_project):
    handler, client = fake_project
    client.retire_batch(4)
    assert handler.posts == 2
    handler.posts = 0
    with pytest.raises(HttpStatusError, match="503"):
        client.submit_batch(BatchSpec(APP, [JobSpec("j")]))
    assert handler.posts == 1


def test_unreachable_project_names_the_url():
    url = f"http://127.0.0.1:{free_port()}/proj/"
    client = BoincRpcClient(url, AUTHENTICATOR, retries=1, backoff_factor=0)
    with pytest.raises(BoincUnreachableError, match=r"127\.0\.0\.1") as caught:
        client.query_batch(1)
    assert caught.value.url == url + "submit_rpc_handler.php"


@pytest.mark.parametrize(
    ("url", "reason"),
    [("notaurl", "no scheme"), ("ftp://boinc.example.org/proj/", "ftp://"), ("http://", "host")],
)
def test_project_urls_must_be_http_or_https_with_a_host(url, reason):
    with pytest.raises(BadUrlError, match=reason) as caught:
        BoincRpcClient(url, AUTHENTICATOR)
    assert repr(url) in str(caught.value)


def test_connection_refused_is_named_in_a_few_words():
    url = f"http://127.0.0.1:{free_port()}/proj/"
    client = BoincRpcClient(url, AUTHENTICATOR, retries=0)
    with pytest.raises(BoincUnreachableError) as caught:
        client.query_batch(1)
    assert str(caught.value) == (
        f"cannot reach the BOINC project at {url}submit_rpc_handler.php: Connection refused"
    )


def test_tls_failure_names_the_url_and_the_tls_error(fake_project):
    _, plain = fake_project  # an http server, asked for https
    url = plain.project_url.replace("http://", "https://")
    client = BoincRpcClient(url, AUTHENTICATOR, retries=0)
    with pytest.raises(BoincUnreachableError, match=r"TLS failed: \w") as caught:
        client.retire_batch(4)
    assert url in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"PHP Fatal error:  Uncaught Error: Call to undefined function", "not XML"),
        (b"<!DOCTYPE html>\n<html><body>It works!</body></html>", "declares a DTD"),
    ],
)
def test_a_reply_that_is_not_boinc_xml_names_the_url(body, reason):
    server, url = serve(FakeRemoteProject(reply=body))
    try:
        with pytest.raises(MalformedReplyError, match=reason) as caught:
            BoincRpcClient(url, AUTHENTICATOR, retries=0).query_batch(1)
    finally:
        server.shutdown()
    assert str(caught.value).startswith(f"{url}submit_rpc_handler.php: the query_batch reply")


def test_boinc_errors_name_the_page_that_sent_them():
    client, _ = _recording_client("error_unknown_batch_reply.xml")
    client._send = lambda method, url, **kwargs: CannedReply(  # type: ignore[method-assign]
        (REMOTE / "error_unknown_batch_reply.xml").read_bytes()
    )
    with pytest.raises(RemoteError) as caught:
        client.query_batch(1)
    assert caught.value.url == "https://boinc.example.org/proj/submit_rpc_handler.php"
    assert str(caught.value).endswith("answered error -1: no such batch")


def test_uploads_record_the_batch_and_delete_time_in_requests_php_accepts():
    """PHP drops a POST with more than max_file_uploads (20) files: groups of 20 at most."""
    project = FakeRemoteProject()
    server, url = serve(project)
    files = {f"pymw_7_{i:02}_in": b"%d" % i for i in range(UPLOAD_MAX_FILES + 5)}
    try:
        with BoincRpcClient(url, AUTHENTICATOR, retries=0) as client:
            client.upload_data(files, batch_id=7, delete_time=1900000000)
            client.upload_data(files, batch_id=8, delete_time=1900000100)  # all there now
    finally:
        server.shutdown()
    operations = [re.match(r"<(\w+)>", r).group(1) for r in project.requests]
    assert operations == ["query_files", "upload_files", "upload_files", "query_files"]
    assert [r.count("<phys_name>") for r in project.requests] == [25, 20, 5, 25]
    assert sorted(project.uploaded) == sorted(files)
    recorded = [(7, 1900000000)] * 3 + [(8, 1900000100)]
    for request, (batch, delete_time) in zip(project.requests, recorded, strict=True):
        assert f"<batch_id>{batch}</batch_id><delete_time>{delete_time}</delete_time>" in request


# Against the sandbox's HTTP side (no daemons, no client).


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Iterator[Sandbox]:
    directory = tmp_path_factory.mktemp("rpc")
    sandbox = Sandbox.open(directory / "proj")
    program = directory / "upcase_1.0"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    templates = (
        (REFERENCE / "template_in.xml").read_text(),
        (REFERENCE / "template_out.xml").read_text(),
    )
    sandbox.add_app(APP, [program], templates=templates)
    server = serve_in_thread(sandbox.project)
    yield sandbox
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[BoincRpcClient]:
    with BoincRpcClient(sandbox.url, sandbox.authenticator, retries=0) as client:
        yield client


def test_submit_then_query_shows_jobs_in_progress_and_staged_files(sandbox, client, tmp_path):
    text_input = tmp_path / "small.txt"
    text_input.write_text("hello remote\n")
    binary_input = tmp_path / "data.bin"
    binary_input.write_bytes(bytes(range(256)))
    inline, staged = client.input_file(text_input), client.input_file(binary_input)
    assert inline.mode == "inline"
    assert staged == InputFile.staged(physical_name(bytes(range(256))))
    jobs = [JobSpec("rpc_a", files=[inline]), JobSpec("rpc_b", "big", files=[staged])]
    batch_id = client.submit_batch(BatchSpec(APP, jobs, batch_name="rpc_batch"))
    status = client.query_batch(batch_id)
    assert (status.njobs, status.state, status.name) == (2, BatchState.IN_PROGRESS, "rpc_batch")
    assert [(j.name, j.status) for j in status.jobs] == [("rpc_a", "queued"), ("rpc_b", "queued")]
    for data in (b"hello remote\n", bytes(range(256))):
        assert sandbox.project.download_path(physical_name(data), create=False).read_bytes() == data
    assert client.query_files([staged.source, "jf_absent"]) == [1]
    assert client.query_job(status.jobs[0].id) == []  # no results before the transitioner


def test_wrong_authenticator_unknown_app_and_file_count_are_remote_errors(sandbox):
    job = JobSpec("bad", files=[InputFile.inline("x")])
    with (
        BoincRpcClient(sandbox.url, "f" * 32, retries=0) as stranger,
        pytest.raises(RemoteError, match="bad authenticator"),
    ):
        stranger.submit_batch(BatchSpec(APP, [job]))
    with BoincRpcClient(sandbox.url, sandbox.authenticator, retries=0) as client:
        with pytest.raises(RemoteError, match="app not found: nope"):
            client.submit_batch(BatchSpec("nope", [job]))
        two_files = JobSpec("two", files=[InputFile.inline("x"), InputFile.inline("y")])
        with pytest.raises(RemoteError, match="wrong # of input files for job 0: need 1, got 2"):
            client.submit_batch(BatchSpec(APP, [two_files]))
        with pytest.raises(RemoteError, match="no such batch"):
            client.query_batch(999999)


def test_output_of_an_unassimilated_job_is_unavailable(client):
    batch_id = client.submit_batch(
        BatchSpec(APP, [JobSpec("rpc_out", files=[InputFile.inline("x")])])
    )
    assert client.query_batch(batch_id).jobs[0].canonical_instance_id == 0
    with pytest.raises(OutputUnavailableError, match="no result"):
        client.get_output(123456, 0)


def test_estimate_templates_create_abort(client):
    jobs = [JobSpec(files=[InputFile.inline("x")]), JobSpec(files=[InputFile.inline("y")])]
    # the reference template says rsc_fpops_est 1e10; a project without credit, 1e9 FLOPS
    assert client.estimate_batch(BatchSpec(APP, jobs)) == pytest.approx(20.0)
    assert "<input_template>" in client.get_templates(APP).input_template
    batch_id = client.create_batch(APP, "rpc_empty")
    assert client.query_batch(batch_id).state == BatchState.INIT
    client.submit_batch(BatchSpec(APP, jobs, batch_id=batch_id))
    client.abort_batch(batch_id)
    status = client.query_batch(batch_id)
    assert status.state == BatchState.ABORTED
    assert all(j.status == "error" and j.errors == ("cancelled",) for j in status.jobs)


def test_md5_names_are_boinc_job_file_names():
    assert physical_name(b"abc") == "jf_" + hashlib.md5(b"abc").hexdigest()
