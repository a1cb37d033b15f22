"""bin/xadd and bin/update_versions, with the real tool's refusals."""

from __future__ import annotations

from conftest import APP, EXECUTABLE, write_app

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import PLATFORM
from pymw.testing.boinc_sandbox.layout import add_app_to_project_xml
from pymw.testing.boinc_sandbox.signing import md5_file, parse_public_key, verify_md5
from pymw.testing.boinc_sandbox.templates import parse_fragment


def _prepare(sandbox: Sandbox, tmp_path) -> None:
    add_app_to_project_xml(sandbox.project, APP)
    sandbox.run_tool("xadd")
    directory = sandbox.project.app_dir / APP / "1.0" / PLATFORM
    directory.mkdir(parents=True)
    write_app(directory)
    old = sandbox.project.app_dir / APP / f"{APP}_1.03_{PLATFORM}"  # old layout: ignored
    old.mkdir()
    write_app(old)


def test_update_versions_refuses_other_args(tmp_path):
    sandbox = Sandbox.open(tmp_path / "p")
    for arg in ("--force", "--sign"):
        run = sandbox.run_tool("update_versions", arg, check=False)
        assert run.returncode != 0 and "unknown arg" in run.stdout + run.stderr


def test_update_versions_signs_copies_and_skips_old_layout(tmp_path):
    sandbox = Sandbox.open(tmp_path / "p")
    _prepare(sandbox, tmp_path)
    sandbox.run_tool("update_versions", "--noconfirm")
    with sandbox.project.connect() as database:
        versions = database.all("SELECT * FROM app_version")
    assert len(versions) == 1 and versions[0]["version_num"] == 100
    doc = parse_fragment(versions[0]["xml_doc"])
    installed = sandbox.project.download_dir / EXECUTABLE
    key = parse_public_key((sandbox.project.key_dir / "code_sign_public").read_text())
    assert verify_md5(md5_file(installed), doc.findtext("file_info/file_signature"), key)
    assert doc.find("app_version/file_ref/main_program") is not None
    again = sandbox.run_tool("update_versions", "--noconfirm")
    assert "No new app versions" in again.stdout


def test_update_versions_refuses_unsigned_files_without_key(tmp_path):
    sandbox = Sandbox.open(tmp_path / "p")
    _prepare(sandbox, tmp_path)
    (sandbox.project.key_dir / "code_sign_private").unlink()
    run = sandbox.run_tool("update_versions", "--noconfirm", check=False)
    assert run.returncode != 0 and "code signing key" in run.stderr
    with sandbox.project.connect() as database:
        assert not database.all("SELECT * FROM app_version")
