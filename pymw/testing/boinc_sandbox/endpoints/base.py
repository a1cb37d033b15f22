"""Requests, responses and endpoints: the small interface between server and pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from ..layout import Project


class Area(Enum):
    """Where an endpoint lives: the project's html/user pages (`/<name>/...`) or its
    cgi-bin programs (`/<name>_cgi/...`)."""

    HTML = "html"
    CGI = "cgi"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below the area's URL prefix, e.g. "cgi" or "download/45/x"
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/xml"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None  # sent from disk instead of body (downloads)


@dataclass(frozen=True)
class Endpoint:
    method: str
    area: Area
    path: str  # exact path, or a prefix ending in "/" when `prefix`
    handler: Callable[[Project, Request], Response]
    prefix: bool = False

    def matches(self, method: str, area: Area, path: str) -> bool:
        if method != self.method or area != self.area:
            return False
        return path.startswith(self.path) if self.prefix else path == self.path


def xml_response(text: str, status: int = 200) -> Response:
    return Response(status=status, body=text.encode())
