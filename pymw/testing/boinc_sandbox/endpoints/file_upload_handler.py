"""`file_upload_handler`: where clients upload output files.

Stands in for BOINC's sched/file_upload_handler.cpp (with upload certificates off, as
`<ignore_upload_certificates>` in config.xml). The client POSTs either
`<get_file_size>NAME</get_file_size>` (for files of 8 KB and more, to resume), or a
`<file_upload>` header (file_info, nbytes, md5_cksum, offset), then `<data>` and a
newline, then the raw bytes. Replies are `<data_server_reply>` with status 0 (ok),
1 (transient, retry) or -1 (permanent error, e.g. the file is larger than the
file_info's max_nbytes).
"""

from __future__ import annotations

import re

from ..layout import Project
from .base import Area, Endpoint, Request, Response, xml_response

DATA_MARK = b"<data>\n"
#: BOINC's error codes for the permanent and transient statuses.
PERMANENT, TRANSIENT = -1, 1


def reply(status: int, message: str = "", extra: str = "") -> Response:
    body = f"<data_server_reply>\n    <status>{status}</status>\n"
    if message:
        body += f"    <message>{message}</message>\n"
    return xml_response(body + extra + "</data_server_reply>\n")


def _tag(header: str, tag: str) -> str | None:
    found = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", header, re.S)
    return found.group(1) if found else None


def _valid_name(name: str) -> bool:
    return bool(name) and "/" not in name and ".." not in name


def handle_upload(project: Project, request: Request) -> Response:
    header_bytes, mark, data = request.body.partition(DATA_MARK)
    header = header_bytes.decode(errors="replace")
    probe = _tag(header, "get_file_size")
    if probe is not None:
        if not _valid_name(probe):
            return reply(PERMANENT, "bad filename")
        path = project.upload_path(probe, create=False)
        size = path.stat().st_size if path.exists() else 0
        return reply(0, extra=f"    <file_size>{size}</file_size>\n")
    if not mark or "<file_upload>" not in header:
        return reply(PERMANENT, "no command")
    name = _tag(header, "name") or ""
    if not _valid_name(name):
        return reply(PERMANENT, "bad filename")
    try:
        nbytes = float(_tag(header, "nbytes") or 0)
        max_nbytes = float(_tag(header, "max_nbytes") or 0)
        offset = int(float(_tag(header, "offset") or 0))
    except ValueError:
        return reply(PERMANENT, "bad number in request")
    if max_nbytes and nbytes > max_nbytes:
        return reply(
            PERMANENT,
            f"file size ({nbytes / 1024:.0f} KB) exceeds limit ({max_nbytes / 1024:.0f} KB)",
        )
    if offset + len(data) > nbytes:
        return reply(PERMANENT, "more data than nbytes")
    path = project.upload_path(name)
    with path.open("r+b" if path.exists() else "wb") as f:
        f.seek(offset)
        f.write(data)
        f.truncate()
    if offset + len(data) < nbytes:
        return reply(TRANSIENT, "incomplete upload")
    return reply(0)


ENDPOINTS = [Endpoint("POST", Area.CGI, "file_upload_handler", handle_upload)]
