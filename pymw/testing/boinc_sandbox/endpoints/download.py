"""Static downloads of download/ (app files and staged inputs).

Stands in for Apache serving the project's download directory. The client GETs plain
URLs and may resume a partial file with a `Range: bytes=N-` header. A file that is
gone (deleted by the file_deleter) is a 404; one the web user may not read (staged
with mode 0600 by the project owner) is a 403, as Apache answers.
"""

from __future__ import annotations

import os

from ..layout import Project
from .base import Area, Endpoint, Request, Response

PREFIX = "download/"


def download(project: Project, request: Request) -> Response:
    relative = request.path.removeprefix(PREFIX)
    path = (project.download_dir / relative).resolve()
    if not path.is_relative_to(project.download_dir) or not path.is_file():
        return Response(status=404, body=b"not found", content_type="text/plain")
    if not os.access(path, os.R_OK):
        return Response(status=403, body=b"forbidden", content_type="text/plain")
    return Response(file=path, content_type="application/octet-stream")


ENDPOINTS = [Endpoint("GET", Area.HTML, PREFIX, download, prefix=True)]
