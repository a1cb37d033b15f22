"""The project's HTTP side: master page, scheduler, uploads, downloads and remote job
submission on 127.0.0.1.

Stands in for Apache with the project's html/user/ pages and cgi-bin/ programs, at the
URLs a real project has: `http://127.0.0.1:<port>/<name>/` (master page, download/,
the remote-submission pages submit_rpc_handler.php, job_file.php, get_output3.php)
and `http://127.0.0.1:<port>/<name>_cgi/` (cgi = the scheduler, file_upload_handler).
Endpoints live in `endpoints/`, one module per BOINC program or page; add a module to
ENDPOINT_MODULES to serve a new one. Run as `python -m
pymw.testing.boinc_sandbox.http_server PROJECT_DIR [--as-web-user]` (what
`sandbox.Sandbox` does). With --as-web-user (root only) it binds its port, loads
everything it needs, then becomes `webuser.WEB_USER`, as Apache serves as www-data:
the pages then read and write the project with that user's rights. In-thread servers
(`serve_in_thread`, unit tests) run as the caller.
"""

from __future__ import annotations

import re
import shutil
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .endpoints import (
    download,
    file_upload_handler,
    get_output3,
    job_file,
    master,
    scheduler,
    submit_rpc_handler,
)
from .endpoints.base import Area, Endpoint, Request, Response
from .layout import Project
from .webuser import drop_to_web_user

ENDPOINT_MODULES = (
    master,
    scheduler,
    file_upload_handler,
    download,
    submit_rpc_handler,
    job_file,
    get_output3,
)
LISTEN_HOST = "127.0.0.1"


def all_endpoints() -> list[Endpoint]:
    return [e for module in ENDPOINT_MODULES for e in module.ENDPOINTS]


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        handler.rfile.readline()
        return b"".join(chunks)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def make_handler(project: Project, endpoints: list[Endpoint]) -> type[BaseHTTPRequestHandler]:
    html_prefix = f"/{project.name}/"
    cgi_prefix = f"/{project.name}_cgi/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "PyMW-BOINC-sandbox"

        def _dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            body = _read_body(self) if method == "POST" else b""
            if url.path.startswith(cgi_prefix):
                area, path = Area.CGI, url.path.removeprefix(cgi_prefix)
            elif url.path.startswith(html_prefix) or url.path == html_prefix.rstrip("/"):
                area, path = Area.HTML, url.path.removeprefix(html_prefix).lstrip("/")
            else:
                self._send(Response(404, b"not found", "text/plain"))
                return
            for endpoint in endpoints:
                if endpoint.matches(method, area, path):
                    request = Request(
                        method=method,
                        path=path,
                        query=parse_qs(url.query),
                        headers=dict(self.headers.items()),
                        body=body,
                    )
                    self._send(endpoint.handler(project, request))
                    return
            self._send(Response(404, b"not found", "text/plain"))

        def _send(self, response: Response) -> None:
            if response.file is None:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)
                return
            size = response.file.stat().st_size
            start = 0
            match = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
            if match and int(match.group(1)) < size:
                start = int(match.group(1))
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(size - start))
            for name, value in response.headers.items():
                self.send_header(name, value)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            with response.file.open("rb") as f:
                f.seek(start)
                shutil.copyfileobj(f, self.wfile)

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    return Handler


def make_server(project: Project) -> ThreadingHTTPServer:
    """A server for the project on 127.0.0.1 at the port of its master URL.

    The schema is brought up to date first, as a project made by an older sandbox may
    lack the tables of newer endpoints (what BOINC's `upgrade` script does for a real
    project).
    """
    with project.connect() as database:
        database.create_schema()
    server = ThreadingHTTPServer(
        (LISTEN_HOST, project.port), make_handler(project, all_endpoints())
    )
    server.daemon_threads = True
    return server


def serve_in_thread(project: Project) -> ThreadingHTTPServer:
    """Serve from a thread of this process (unit tests); call .shutdown() when done."""
    server = make_server(project)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _load_everything() -> None:
    """Import what the pages load lazily, while the interpreter's files are readable.

    The web user may not be able to read the interpreter's library (e.g. under /root).
    The pages import their modules at load time; the multipart form parser (email)
    and the error handler's traceback module load more on first use, so they are
    used once here.
    """
    import traceback  # noqa: F401  (the server's error handler imports it lazily)

    from .endpoints.base import Request as WarmUp
    from .endpoints.submit_util import parse_form

    boundary = "warmup"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="request"\r\n\r\n<x/>\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file_0"; filename="f"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\ndata\r\n--{boundary}--\r\n"
    ).encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    parse_form(WarmUp("POST", "", {}, headers, body))


def main(argv: list[str]) -> int:
    project = Project.load(Path(argv[0]))
    server = make_server(project)
    if "--as-web-user" in argv[1:]:
        _load_everything()
        drop_to_web_user()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
