"""make_project's directory layout and the hashed download/upload hierarchy."""

from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET

from pymw.testing.boinc_sandbox.layout import dir_hier_url, filename_hash, short_hostname
from pymw.testing.boinc_sandbox.tools import TOOLS


def test_filename_hash_matches_real_download_url(reference):
    # The reference reply serves golden_in.txt from download/45/.
    assert filename_hash("golden_in.txt") == "45"
    assert dir_hier_url("http://h/p/download", "golden_in.txt") in (
        reference / "sched_reply_with_work.xml"
    ).read_text().replace("127.0.0.1/pymwtest", "h/p")


def test_project_layout(project):
    host = short_hostname()
    config = ET.parse(project.root / "config.xml").getroot()
    settings = config.find("config")
    for tag in ("host", "download_url", "upload_url", "key_dir", "app_dir", "master_url"):
        assert settings.findtext(tag), tag
    assert settings.findtext("uldl_dir_fanout") == "1024"
    assert config.find("daemons") is not None and config.find("tasks") is not None
    assert "file_upload_handler" in settings.findtext("upload_url")
    assert project.master_url.startswith("http://127.0.0.1:")
    for sub in ("bin", "templates", "apps", "download", "upload", "results", "keys"):
        assert (project.root / sub).is_dir(), sub
    assert (project.root / f"log_{host}").is_dir() and (project.root / f"pid_{host}").is_dir()
    assert (project.root / "keys" / "code_sign_private").exists()
    assert (project.root / "keys" / "code_sign_public").exists()
    assert (project.root / "project.xml").exists()
    for name in TOOLS:
        tool = project.bin_dir / name
        assert os.access(tool, os.X_OK)
        assert tool.read_text().startswith(f"#!{sys.executable}\n")
