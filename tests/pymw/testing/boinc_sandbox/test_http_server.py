"""The HTTP side: master page, downloads and file_upload_handler, on 127.0.0.1."""

from __future__ import annotations

import hashlib
import urllib.request

import pytest

from pymw.testing.boinc_sandbox.http_server import serve_in_thread


@pytest.fixture
def server(project):
    server = serve_in_thread(project)
    yield project
    server.shutdown()
    server.server_close()


def _post(url: str, body: bytes) -> str:
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as r:
        return r.read().decode()


def _upload(name: str, data: bytes, max_nbytes: int) -> bytes:
    header = (
        "<data_server_request>\n<core_client_major_version>7</core_client_major_version>\n"
        f"<file_upload>\n<file_info>\n    <name>{name}</name>\n"
        f"    <max_nbytes>{max_nbytes}</max_nbytes>\n</file_info>\n"
        f"<nbytes>{len(data)}</nbytes>\n<md5_cksum>{hashlib.md5(data).hexdigest()}</md5_cksum>\n"
        "<offset>0</offset>\n<data>\n"
    )
    return header.encode() + data


def test_master_page_has_exact_scheduler_link(server):
    with urllib.request.urlopen(server.master_url, timeout=10) as page:
        lines = page.read().decode().splitlines()
    link = f'<link rel="boinc_scheduler" href="{server.scheduler_url}">'
    assert link in lines and len(link) < 256


def test_upload_then_size_probe_then_download(server):
    upload_url = server.upload_url
    assert "<status>0</status>" in _post(upload_url, _upload("out_0", b"x" * 9000, 100000))
    assert server.upload_path("out_0").read_bytes() == b"x" * 9000
    probe = _post(upload_url, b"<data_server_request>\n<get_file_size>out_0</get_file_size>\n")
    assert "<file_size>9000</file_size>" in probe
    server.download_path("in.txt").write_text("input")
    with urllib.request.urlopen(server.download_file_url("in.txt"), timeout=10) as r:
        assert r.read() == b"input"


def test_upload_over_max_nbytes_is_a_permanent_error(server):
    reply = _post(server.upload_url, _upload("big_0", b"x" * 5000, 1000))
    assert "<status>-1</status>" in reply and "exceeds limit" in reply
    assert not server.upload_path("big_0", create=False).exists()
