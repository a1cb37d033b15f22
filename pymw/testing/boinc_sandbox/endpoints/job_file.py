"""`job_file.php`: putting a remote submitter's input files into the download hierarchy.

Stands in for `html/user/job_file.php` of BOINC 8.3, as `lib/boinc_submit.py` calls
it. Files are named by content, `jf_<md5>`, so a file already on the server is never
sent twice:

- `query_files` (`<phys_name>` list) answers `<absent_files><file>i</file>…` with the
  indices of the names not in download/;
- `upload_files` is a multipart POST: the form field `request=<upload_files>…` and one
  attachment per file (`file_0`, `file_1`, …) whose filename is the physical name; each
  goes to download/<hash>/<name>, where `local_staged` inputs are looked up. The web
  user must be able to write download/, which a project made by make_project does not
  allow (see `webuser.GRANT_DOWNLOAD_COMMAND`); until then every upload fails with the
  real page's "upload_files(): could not move <tmp> to <path>".

Not modelled: the job_file and batch_file_assoc tables and the job_file_deleter daemon
that expire files (the sandbox keeps them until the project is deleted).
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET

from ..db import Database
from ..layout import Project
from .base import Area, Endpoint
from .submit_util import Form, XmlError, check_submit_permissions, is_valid_filename, rpc_handler


def query_files(project: Project, database: Database, root: ET.Element, _form: Form) -> str:
    check_submit_permissions(database, root, None)
    names = [(e.text or "").strip() for e in root.findall("phys_name")]
    absent = [
        i
        for i, name in enumerate(names)
        if not (is_valid_filename(name) and project.download_path(name, create=False).is_file())
    ]
    return "<absent_files>\n" + "".join(f"<file>{i}</file>\n" for i in absent) + "</absent_files>\n"


def upload_files(project: Project, database: Database, root: ET.Element, form: Form) -> str:
    check_submit_permissions(database, root, None)
    failures = ""
    for upload in form.files:
        if not is_valid_filename(upload.filename):
            raise XmlError(f"{upload.filename} is not a valid filename")
        # PHP keeps the upload in a temporary file and rename()s it into place.
        temporary = f"/tmp/php{secrets.token_hex(3)}"
        try:
            path = project.download_path(upload.filename)
            path.write_bytes(upload.data)
        except OSError:
            path = project.download_path(upload.filename, create=False)
            failures += f"could not move {temporary} to {path} "
    if failures:
        raise XmlError(f"upload_files(): {failures}")
    return "<success/>\n"


ENDPOINTS = [
    Endpoint(
        "POST",
        Area.HTML,
        "job_file.php",
        rpc_handler({"query_files": query_files, "upload_files": upload_files}, "no such action"),
    )
]
