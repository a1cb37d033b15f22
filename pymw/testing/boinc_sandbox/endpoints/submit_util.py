"""What the remote-submission pages share: form parsing, the XML reply format, accounts.

Stands in for the parts of a BOINC 8.3 web server that `submit_rpc_handler.php` and
`job_file.php` include: PHP's own parsing of a POSTed form (`$_POST`, `$_FILES`),
`html/inc/xml.inc` (`xml_header`, `xml_start_tag`, `xml_error`) and the permission check
of `html/inc/submit_util.inc`. A reply starts with the XML header the real one sends
(it says ISO-8859-1 but the bytes are PHP's strings, i.e. UTF-8), then `<operation>`;
an error ends it early with `<error><error_num>-1</error_num><error_msg>…</error_msg>
</error>` inside that tag (see tests/data/boinc_reference/remote/).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from html import escape
from sqlite3 import Row
from urllib.parse import parse_qs

from ..db import Database, DatabaseDown
from ..layout import Project
from .base import Request, Response, xml_response

XML_HEADER = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n'
#: The error number every remote-submission error carries (xml_error(-1, ...)).
ERROR_NUM = -1
#: BOINC's is_valid_filename: no path separators, no leading dot, printable.
VALID_FILENAME = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")


class XmlError(Exception):
    """An `xml_error(-1, message)` of the real pages: ends the reply with `<error>`."""


@dataclass(frozen=True)
class UploadedFile:
    """One multipart attachment (an entry of PHP's `$_FILES`)."""

    field: str
    filename: str
    data: bytes


@dataclass
class Form:
    """A POSTed form: `$_POST` fields and `$_FILES` attachments."""

    fields: dict[str, str] = field(default_factory=dict)
    files: list[UploadedFile] = field(default_factory=list)


def parse_form(request: Request) -> Form:
    """The form of a urlencoded or multipart/form-data POST."""
    content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
    if not content_type.lower().startswith("multipart/form-data"):
        query = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
        return Form(fields={k: v[0] for k, v in query.items()})
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.body)
    form = Form()
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        payload = part.get_payload(decode=True) or b""
        filename = part.get_filename()
        if filename is None:
            form.fields[name] = payload.decode("utf-8", "replace")
        else:
            form.files.append(UploadedFile(name, filename, payload))
    return form


def is_valid_filename(name: str) -> bool:
    return bool(VALID_FILENAME.match(name)) and ".." not in name


def error_xml(message: str) -> str:
    return (
        f"<error>\n    <error_num>{ERROR_NUM}</error_num>\n"
        f"    <error_msg>{escape(message, quote=False)}</error_msg>\n</error>\n"
    )


#: One operation: (project, database, request root, form) -> the reply's body.
Operation = Callable[[Project, Database, ET.Element, Form], str]


def rpc_handler(
    operations: dict[str, Operation], unknown: str
) -> Callable[[Project, Request], Response]:
    """A page that reads the form field `request=<XML>` and runs the root tag's operation.

    `unknown` is the page's message for a root tag it does not know; that error, like a
    request that does not parse, comes before `xml_start_tag` and so stands alone.
    """

    def handle(project: Project, request: Request) -> Response:
        form = parse_form(request)
        try:
            root = ET.fromstring(form.fields.get("request", ""))
        except ET.ParseError:
            return xml_response(XML_HEADER + error_xml("can't parse request message"))
        operation = operations.get(root.tag)
        if operation is None:
            return xml_response(XML_HEADER + error_xml(unknown))
        try:
            with project.connect() as database:
                body = operation(project, database, root, form)
        except XmlError as error:
            body = error_xml(str(error))
        except DatabaseDown:
            body = error_xml("Can't connect to database")
        return xml_response(f"{XML_HEADER}<{root.tag}>\n{body}</{root.tag}>\n")

    return handle


def check_submit_permissions(database: Database, root: ET.Element, app_id: int | None) -> Row:
    """The requesting user, if it may submit (to `app_id`, or at all when None).

    Like `check_remote_submit_permissions`: the account comes from `<authenticator>`;
    it needs a user_submit row, and for an app either submit_all or a user_submit_app
    row for that app.
    """
    authenticator = (root.findtext("authenticator") or "").strip()
    if not authenticator:
        raise XmlError("no authenticator")
    user = database.one("SELECT * FROM user WHERE authenticator = ?", authenticator)
    if user is None:
        raise XmlError("bad authenticator")
    rights = database.one("SELECT * FROM user_submit WHERE user_id = ?", user["id"])
    if rights is None:
        raise XmlError("no submit access")
    if app_id is not None and not rights["submit_all"]:
        per_app = database.one(
            "SELECT 1 FROM user_submit_app WHERE user_id = ? AND app_id = ?", user["id"], app_id
        )
        if per_app is None:
            raise XmlError("no submit access")
    return user
