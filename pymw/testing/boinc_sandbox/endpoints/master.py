"""The master page: what a BOINC client GETs first at the project URL.

Stands in for the project's html/user/index.php. The client reads it line by line in
256-byte buffers and looks for `<link rel="boinc_scheduler" href="URL">` (or
`<scheduler>URL</scheduler>`), so that line is short and exact.
"""

from __future__ import annotations

from html import escape

from ..layout import Project
from .base import Area, Endpoint, Request, Response

MASTER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<!-- <scheduler>{scheduler}</scheduler> -->
<link rel="boinc_scheduler" href="{scheduler}">
<title>{title}</title>
</head>
<body>
<h1>{title}</h1>
<p>A PyMW BOINC sandbox: a loopback BOINC project for tests.</p>
</body>
</html>
"""


def master_page(project: Project, request: Request) -> Response:
    text = MASTER_PAGE.format(scheduler=project.scheduler_url, title=escape(project.long_name))
    return Response(body=text.encode(), content_type="text/html")


ENDPOINTS = [
    Endpoint("GET", Area.HTML, "", master_page),
    Endpoint("GET", Area.HTML, "index.php", master_page),
]
