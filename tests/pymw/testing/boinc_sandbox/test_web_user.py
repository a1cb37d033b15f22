"""The web side runs as its own user (root only), so file modes matter as on a real
server: upload/ and the database writable by it, download/ not until the admin grants
it, staged files served only if it may read them."""

from __future__ import annotations

import hashlib
import os
import pwd
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import APP

from pymw.testing.boinc_sandbox import Sandbox, SandboxError
from pymw.testing.boinc_sandbox.constants import WEB_USER
from pymw.testing.boinc_sandbox.processes import read_pid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@pytest.fixture
def web_side(remote_sandbox: Sandbox) -> Iterator[Sandbox]:
    """remote_sandbox with only its HTTP side running (as the web user)."""
    remote_sandbox.start_http()
    try:
        yield remote_sandbox
    finally:
        remote_sandbox.stop()


def _owner(pid: int) -> int:
    return Path(f"/proc/{pid}").stat().st_uid


def _upload_files(sandbox: Sandbox, data: bytes) -> ET.Element:
    name = f"jf_{hashlib.md5(data).hexdigest()}"
    request = (
        f"<upload_files><authenticator>{sandbox.authenticator}</authenticator>"
        f"<phys_name>{name}</phys_name></upload_files>"
    )
    reply = requests.post(
        sandbox.url + "job_file.php",
        data={"request": request},
        files={"file_0": (name, data, "application/octet-stream")},
        timeout=30,
    )
    return ET.fromstring(reply.text)


def test_the_web_side_is_another_user(web_side):
    pid = read_pid(web_side.project.httpd_pid_file)
    assert _owner(pid) != os.geteuid()
    assert pwd.getpwuid(_owner(pid)).pw_name == WEB_USER


def test_a_staged_file_the_web_user_cannot_read_is_not_served(web_side, tmp_path):
    for name, mode in (("open.txt", 0o644), ("private.txt", 0o600)):
        source = tmp_path / name
        source.write_text("input")
        source.chmod(mode)
        web_side.run_tool("stage_file", str(source))
    readable = requests.get(web_side.project.download_file_url("open.txt"), timeout=30)
    assert readable.status_code == 200 and readable.content == b"input"
    private = requests.get(web_side.project.download_file_url("private.txt"), timeout=30)
    assert private.status_code == 403


def test_job_file_uploads_fail_until_the_admin_grants_download(web_side):
    refused = _upload_files(web_side, b"first input")
    message = refused.findtext("error/error_msg")
    assert message.startswith("upload_files(): could not move /tmp/php") and "/download/" in message
    web_side.grant_web_download_write()
    assert _upload_files(web_side, b"second input").find("success") is not None
    staged = web_side.project.download_path(
        f"jf_{hashlib.md5(b'second input').hexdigest()}", create=False
    )
    assert staged.read_bytes() == b"second input"


def test_the_web_user_writes_the_database_and_upload(web_side):
    """submit_batch (inline input: written to download/, then create_work) and a
    client's upload work as the web user once download/ is granted."""
    web_side.grant_web_download_write()
    request = (
        f"<submit_batch><authenticator>{web_side.authenticator}</authenticator><batch>"
        f"<app_name>{APP}</app_name><job><name>web_j0</name><input_file><mode>inline</mode>"
        "<source>hello</source></input_file></job></batch></submit_batch>"
    )
    reply = requests.post(
        web_side.url + "submit_rpc_handler.php", data={"request": request}, timeout=30
    )
    assert ET.fromstring(reply.text).findtext("batch_id"), reply.text
    data = b"output bytes"
    header = (
        "<data_server_request>\n<file_upload>\n<file_info>\n    <name>web_out_0</name>\n"
        "    <max_nbytes>1000</max_nbytes>\n</file_info>\n"
        f"<nbytes>{len(data)}</nbytes>\n<md5_cksum>{hashlib.md5(data).hexdigest()}</md5_cksum>\n"
        "<offset>0</offset>\n<data>\n"
    )
    upload = requests.post(web_side.project.upload_url, data=header.encode() + data, timeout=30)
    assert "<status>0</status>" in upload.text
    assert web_side.project.upload_path("web_out_0", create=False).read_bytes() == data


def test_a_project_the_web_user_cannot_reach_is_refused(tmp_path):
    """pytest's tmp_path is below a 0700 directory: the web side could not serve it."""
    sandbox = Sandbox.open(tmp_path / "proj")
    with pytest.raises(SandboxError, match=f"web user {WEB_USER} cannot enter"):
        sandbox.start_http()
