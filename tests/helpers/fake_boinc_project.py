"""A stand-in for a BOINC project's web side, for fast tests of remote submission.

It answers the calls PyMW's `--url` interface makes (create_batch, job_file.php's
query_files and upload_files, submit_batch, query_batch, retire_batch, get_output3.php)
with replies shaped like BOINC 1.6.2's, and can fail the ways a real server does:

- `empty_answers`: get_output3.php first answers each output this many times with HTTP
  200, `Content-Disposition: attachment` and `Content-Length: 0`, as the real page does
  between query_batch's "done" and the assimilator's run; `missing` result ids get
  nothing else, ever (an assimilator that does not run for them);
- `upload_error`: job_file.php's upload_files answers `<error>` with this message (the
  real page's text when the web server cannot write download/);
- `reply`: every POST gets this body instead (a page that is not XML, say).

Every job is done at once, its output `output` (a task output envelope).
"""

from __future__ import annotations

import email
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from pyboinc import contract

BATCH_ID = 7
XML_HEADER = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'


def task_output(value) -> bytes:
    """What a worker writes for a task that returned `value`."""
    return contract.encode(contract.Outcome(True, value).to_envelope())


@dataclass
class FakeProject:
    output: bytes = field(default_factory=lambda: task_output([785398, 1_000_000]))
    empty_answers: int = 0
    missing: set[int] = field(default_factory=set)
    upload_error: str | None = None
    reply: bytes | None = None
    jobs: list[str] = field(default_factory=list)
    uploaded: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    output_gets: Counter = field(default_factory=Counter)

    def answer_post(self, request: str) -> str:
        self.requests.append(request)
        operation = re.match(r"\s*<(\w+)>", request).group(1)
        if operation == "create_batch":
            return f"<create_batch>\n<batch_id>{BATCH_ID}</batch_id>\n</create_batch>\n"
        if operation == "query_files":
            names = re.findall(r"<phys_name>([^<]+)</phys_name>", request)
            absent = "".join(
                f"<file>{i}</file>\n" for i, n in enumerate(names) if n not in self.uploaded
            )
            return f"<query_files>\n<absent_files>\n{absent}</absent_files>\n</query_files>\n"
        if operation == "upload_files":
            if self.upload_error is not None:
                return (
                    "<upload_files>\n<error>\n<error_num>-1</error_num>\n"
                    f"<error_msg>{self.upload_error}</error_msg>\n</error>\n</upload_files>\n"
                )
            self.uploaded += re.findall(r"<phys_name>([^<]+)</phys_name>", request)
            return "<upload_files>\n<success/>\n</upload_files>\n"
        if operation == "submit_batch":
            self.jobs += re.findall(r"<job>\s*<name>([^<]+)</name>", request)
            return f"<submit_batch>\n<batch_id>{BATCH_ID}</batch_id>\n</submit_batch>\n"
        if operation == "query_batch":
            return self._batch()
        if operation == "retire_batch":
            return "<retire_batch>\n<success>1</success>\n</retire_batch>\n"
        return "<error>\n<error_num>-1</error_num>\n<error_msg>bad command</error_msg>\n</error>\n"

    def _batch(self) -> str:
        jobs = "".join(
            f"<job>\n<id>{i}</id>\n<name>{name}</name>\n"
            f"<canonical_instance_id>{i}</canonical_instance_id>\n<status>done</status>\n</job>\n"
            for i, name in enumerate(self.jobs, start=1)
        )
        return (
            f"<query_batch>\n<id>{BATCH_ID}</id>\n<create_time>1</create_time>\n"
            f"<expire_time>0</expire_time>\n<njobs>{len(self.jobs)}</njobs>\n"
            "<fraction_done>1</fraction_done>\n<nerror_jobs>0</nerror_jobs>\n"
            "<state>2</state>\n<completion_time>2</completion_time>\n"
            f"<name>b</name>\n<app_name>pymw</app_name>\n{jobs}</query_batch>\n"
        )

    def answer_output(self, result_id: int) -> bytes:
        self.output_gets[result_id] += 1
        if result_id in self.missing or self.output_gets[result_id] <= self.empty_answers:
            return b""
        return self.output


def _request_field(handler: BaseHTTPRequestHandler, body: bytes) -> str:
    kind = handler.headers.get("Content-Type", "")
    if kind.startswith("multipart/"):
        message = email.message_from_bytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
        for part in message.get_payload():
            if part.get_param("name", header="content-disposition") == "request":
                return part.get_payload(decode=True).decode()
        return ""
    return parse_qs(body.decode())["request"][0]


def serve(project: FakeProject) -> tuple[ThreadingHTTPServer, str]:
    """Serve `project` on a free loopback port; returns the server and its master URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            reply = project.reply
            if reply is None:
                reply = (XML_HEADER + project.answer_post(_request_field(self, body))).encode()
            self._send(reply, "text/xml")

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            data = project.answer_output(int(query["result_id"][0]))
            self._send(data, "application/octet-stream", attachment=True)

        def _send(self, data: bytes, kind: str, attachment: bool = False) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            if attachment:
                self.send_header("Content-Disposition", "attachment; filename=out")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/fake/"
