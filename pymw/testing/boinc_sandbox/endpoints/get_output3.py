"""`get_output3.php`: a submitter downloads an output file of an assimilated job.

Stands in for `html/user/get_output3.php` of BOINC 8.3 with
`action=get_file&result_id=R&index=I[&download=1]`. It serves the files that
sample_assimilator moved to results/<batch>/<wu_name>__file_<open_name> (the "assim
move" layout). Like the real page it checks no authenticator and no ownership: anyone
who knows a result id gets its output. It does not check that the file is there
either: for an output not assimilated yet (or with another assimilator) it answers
HTTP 200 with an empty body, `Content-Length: 0` and, with `download=1`, a
`Content-Disposition: attachment` header (PHP's readfile() of a missing file), and
logs PHP's warning to the web side's log. An empty body therefore means "not there",
never an empty result. Errors it does check ("no result", "bad index") are HTML
pages ("Unable to handle request"), as `error_page` makes them. Not supported:
action=get_batch.
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

from ..db import Database, DatabaseDown
from ..jobs import assimilated_output_path, output_files
from ..layout import Project
from .base import Area, Endpoint, Request, Response

PAGE = "get_output3.php"


class PageError(Exception):
    """An `error_page(message)` of the real page."""


def error_page(message: str) -> Response:
    body = (
        "<html><head><title>Unable to handle request</title></head><body>\n"
        f"<h2>Unable to handle request</h2>\n{escape(message)}\n</body></html>\n"
    )
    return Response(body=body.encode(), content_type="text/html")


def _int_arg(request: Request, name: str) -> int:
    try:
        return int(request.query[name][0])
    except (KeyError, ValueError) as error:
        raise PageError(f"missing or bad parameter: {name}") from error


def _php_warning(function: str, path: Path) -> None:
    """What PHP writes to Apache's error log for a file it cannot open."""
    print(
        f"PHP Warning:  {function}({path}): Failed to open stream: No such file or directory"
        f" in html/user/{PAGE}",
        file=sys.stderr,
        flush=True,
    )


def get_file(project: Project, database: Database, request: Request) -> Response:
    result = database.one("SELECT * FROM result WHERE id = ?", _int_arg(request, "result_id"))
    if result is None:
        raise PageError("no result")
    wu = database.one("SELECT * FROM workunit WHERE id = ?", result["workunitid"])
    if wu is None:
        raise PageError("no workunit")
    outputs = output_files(project, result["xml_doc_in"])
    index = _int_arg(request, "index")
    if not 0 <= index < len(outputs):
        raise PageError("bad index")
    path = assimilated_output_path(project, wu["batch"], wu["name"], outputs[index].open_name)
    if request.query.get("download", [""])[0]:
        headers = {"Content-Disposition": f"attachment; filename={path.name}"}
        if not path.is_file():
            _php_warning("readfile", path)
            return Response(content_type="application/octet-stream", headers=headers)
        return Response(file=path, content_type="application/octet-stream", headers=headers)
    if not path.is_file():
        _php_warning("file_get_contents", path)
        return Response(body=b"<pre>\n</pre>\n", content_type="text/html")
    text = escape(path.read_text(errors="replace"), quote=False)
    return Response(body=f"<pre>\n{text}</pre>\n".encode(), content_type="text/html")


def get_output3(project: Project, request: Request) -> Response:
    if request.query.get("action", [""])[0] != "get_file":
        return Response(content_type="text/html")
    try:
        with project.connect() as database:
            return get_file(project, database, request)
    except PageError as error:
        return error_page(str(error))
    except DatabaseDown:
        return error_page("Can't connect to database")


ENDPOINTS = [Endpoint("GET", Area.HTML, PAGE, get_output3)]
