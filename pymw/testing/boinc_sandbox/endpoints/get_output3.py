"""`get_output3.php`: a submitter downloads an output file of an assimilated job.

Stands in for `html/user/get_output3.php` of BOINC 8.3 with
`action=get_file&result_id=R&index=I[&download=1]`. It serves the files that
sample_assimilator moved to results/<batch>/<wu_name>__file_<open_name> (the "assim
move" layout): before assimilation, or with another assimilator, there is nothing to
serve. The user is the one logged in by the `auth` cookie (the authenticator), as on
every BOINC web page; someone else's batch gets "not owner". With `download=1` the
file comes as an attachment (`do_download`); without, HTML-escaped inside `<pre>`.
Errors are HTML pages ("Unable to handle request"), as `error_page` makes them.
Not supported: action=get_batch_zip and get_batch_tar.
"""

from __future__ import annotations

from html import escape
from http.cookies import SimpleCookie

from ..db import Database
from ..jobs import assimilated_output_path, output_files
from ..layout import Project
from .base import Area, Endpoint, Request, Response

PAGE = "get_output3.php"
LOGIN_PAGE = "login_form.php"


class PageError(Exception):
    """An `error_page(message)` of the real page."""


def error_page(message: str) -> Response:
    body = (
        "<html><head><title>Unable to handle request</title></head><body>\n"
        f"<h2>Unable to handle request</h2>\n{escape(message)}\n</body></html>\n"
    )
    return Response(body=body.encode(), content_type="text/html")


def _logged_in_user(database: Database, request: Request):
    cookie = SimpleCookie(
        next((v for k, v in request.headers.items() if k.lower() == "cookie"), "")
    )
    morsel = cookie.get("auth")
    if morsel is None or not morsel.value:
        return None
    return database.one("SELECT * FROM user WHERE authenticator = ?", morsel.value)


def _int_arg(request: Request, name: str) -> int:
    try:
        return int(request.query[name][0])
    except (KeyError, ValueError) as error:
        raise PageError(f"missing or bad parameter: {name}") from error


def get_file(project: Project, database: Database, request: Request, user) -> Response:
    result = database.one("SELECT * FROM result WHERE id = ?", _int_arg(request, "result_id"))
    if result is None:
        raise PageError("no result")
    wu = database.one("SELECT * FROM workunit WHERE id = ?", result["workunitid"])
    if wu is None:
        raise PageError("no workunit")
    batch = database.one("SELECT user_id FROM batch WHERE id = ?", wu["batch"])
    if batch is None or batch["user_id"] != user["id"]:
        raise PageError("not owner")
    outputs = output_files(project, result["xml_doc_in"])
    index = _int_arg(request, "index")
    if not 0 <= index < len(outputs):
        raise PageError("bad index")
    path = assimilated_output_path(project, wu["batch"], wu["name"], outputs[index].open_name)
    if not path.is_file():
        raise PageError(f"output file {path.name} not found")
    if request.query.get("download", [""])[0]:
        return Response(
            file=path,
            content_type="application/octet-stream",
            headers={"Content-Disposition": f"attachment; filename={path.name}"},
        )
    text = escape(path.read_text(errors="replace"), quote=False)
    return Response(body=f"<pre>\n{text}</pre>\n".encode(), content_type="text/html")


def get_output3(project: Project, request: Request) -> Response:
    with project.connect() as database:
        user = _logged_in_user(database, request)
        if user is None:
            # get_logged_in_user() sends a visitor who is not logged in to the login page.
            location = f"{project.master_url}{LOGIN_PAGE}?next_url={PAGE}"
            return Response(status=302, content_type="text/html", headers={"Location": location})
        if request.query.get("action", [""])[0] != "get_file":
            return Response(content_type="text/html")
        try:
            return get_file(project, database, request, user)
        except PageError as error:
            return error_page(str(error))


ENDPOINTS = [Endpoint("GET", Area.HTML, PAGE, get_output3)]
