"""What PyMW keeps in a BOINC project's directory: shared inputs and who refers to them,
batch numbers, templates, daemons in config.xml, tool errors (no server needed)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pymw.interfaces.boinc import Checkpoint, registry
from pymw.interfaces.boinc.constants import OBSOLETE_DAEMONS, REQUIRED_DAEMONS
from pymw.interfaces.boinc.project import BoincProject, BoincToolError
from pymw.interfaces.boinc.shared_files import SharedFiles
from pymw.interfaces.boinc.workunits import BoincArgs, WorkunitFactory, default_templates

ROOT = Path(__file__).resolve().parents[4]

OLD_CONFIG = """<boinc>
  <config><host>{host}</host></config>
  <daemons>
    <daemon><cmd>feeder -d 3</cmd></daemon>
    <daemon><cmd>transitioner -d 3</cmd></daemon>
    <daemon><cmd>file_deleter -d 3</cmd></daemon>
    <daemon><cmd>sample_trivial_validator -d 3 --app pymw</cmd></daemon>
    <daemon><cmd>script_assimilator -d 3 --app pymw --script pymw_assimilator</cmd></daemon>
  </daemons>
</boinc>
"""


@pytest.fixture
def project(tmp_path: Path) -> BoincProject:
    """A project directory as make_project leaves it, with tools that log their calls."""
    root = tmp_path / "project"
    (root / "bin").mkdir(parents=True)
    (root / "templates").mkdir()
    (root / "config.xml").write_text(OLD_CONFIG.format(host="testhost"))
    for tool in ("start", "stop"):
        # Each call is logged with the daemons config.xml lists at that moment.
        script = root / "bin" / tool
        script.write_text(
            f"#!/bin/sh\necho {tool} $(grep -c '<daemon>' config.xml) "
            f"$(grep -c trivial config.xml) >> tool_calls\n"
        )
        script.chmod(0o755)
    return BoincProject.open(root)


def factory_for(project: BoincProject, batch: int = 1) -> WorkunitFactory:
    return WorkunitFactory(project, batch, BoincArgs(), stdlib_zip=None)


def template_files(project: BoincProject, line: str) -> list[bool]:
    """For each input file of a create_work line's template: is it <no_delete/>?"""
    words = line.split()
    template = project.root / words[words.index("--wu_template") + 1]
    infos = ET.parse(template).getroot().findall("file_info")
    return [info.find("no_delete") is not None for info in infos]


def test_shared_inputs_are_no_delete_and_each_workunits_own_input_is_not(project, tmp_path):
    data_zip = tmp_path / "data.zip"
    data_zip.write_bytes(b"PK\x05\x06" + bytes(18))
    factory = factory_for(project)
    line = factory.line_for("pymw_1_aa", "print(1)", "d1", b"in", data_zip)
    assert template_files(project, line) == [True, False, True]  # script, input, data zip
    remote_in = ET.fromstring(default_templates()["templates/pymw_in"])
    assert [info.find("no_delete") is not None for info in remote_in.findall("file_info")] == [
        True,
        False,
    ]


def test_staged_files_and_templates_are_readable_by_another_user_whatever_the_umask(project):
    old_umask = os.umask(0o077)
    try:
        factory_for(project).line_for("pymw_1_aa", "print(1)", "d1", b"in", None)
    finally:
        os.umask(old_umask)
    staged = [project.download_path("pymw_script_d1.py"), project.download_path("pymw_1_aa_in")]
    templates = list((project.root / "templates").glob("pymw_*"))
    assert templates and all(path.is_file() for path in staged)
    for path in staged + templates:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    for path in staged:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755, path.parent


def test_a_shared_file_is_deleted_only_when_no_batch_refers_to_it(project):
    first, second = SharedFiles(project, 1), SharedFiles(project, 2)
    first.stage("pymw_script_x.py", "one")
    second.stage("pymw_script_x.py", "one")
    staged = project.download_path("pymw_script_x.py")
    md5_cache = staged.with_name(staged.name + ".md5")
    md5_cache.write_text("cafe 3\n")  # what create_work writes with <cache_md5_info>
    assert first.release() == []
    assert staged.read_text() == "one"
    assert second.release() == ["pymw_script_x.py"]
    assert not staged.exists() and not md5_cache.exists()
    SharedFiles(project, 3).stage("pymw_script_x.py", "one")  # a later batch stages it again
    assert staged.read_text() == "one"


def test_a_rerun_releases_what_its_killed_first_run_staged(project):
    """The references are on disk: a new process of the same batch releases them."""
    factory_for(project, batch=7).line_for("pymw_7_aa", "print(1)", "d1", b"in", None)
    assert SharedFiles(project, 7).release() == ["pymw_script_d1.py"]


LOCK_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pymw.interfaces.boinc.project import BoincProject
    from pymw.interfaces.boinc.shared_files import project_lock

    with project_lock(BoincProject.open(sys.argv[1])):
        print("locked", flush=True)
        time.sleep(1.5)
    """
)


def test_staging_waits_for_another_masters_release(project):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(project.root)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        SharedFiles(project, 1).stage("pymw_script_x.py", "one")
        assert time.monotonic() - started > 1.0
    finally:
        holder.wait(timeout=10)


STAGER = textwrap.dedent(
    """
    import sys
    from pymw.interfaces.boinc.project import BoincProject
    from pymw.interfaces.boinc.shared_files import SharedFiles

    project = BoincProject.open(sys.argv[1])
    files = SharedFiles(project, int(sys.argv[2]))
    for _ in range(150):
        files.stage("pymw_script_x.py", "one")
        if not project.download_path("pymw_script_x.py").exists():
            sys.exit("a file this batch refers to was deleted")
        files.release()
    """
)


def test_two_masters_staging_and_releasing_at_once_never_lose_a_file(project):
    runs = [
        subprocess.Popen([sys.executable, "-c", STAGER, str(project.root), str(batch)], cwd=ROOT)
        for batch in (1, 2)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    assert not project.download_path("pymw_script_x.py").exists()


CLAIMER = textwrap.dedent(
    """
    import sys
    from pymw.interfaces.boinc import registry

    print(" ".join(str(registry.claim_batch(sys.argv[1], 1700000000)) for _ in range(25)))
    """
)


def test_masters_starting_in_the_same_second_get_different_batches(project):
    runs = [
        subprocess.run(
            [sys.executable, "-c", CLAIMER, str(project.root)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        for _ in range(2)
    ]
    claimed = [int(batch) for run in runs for batch in run.stdout.split()]
    assert len(set(claimed)) == 50


def test_a_task_directory_keeps_its_batch_and_another_gets_its_own(project, tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    first = Checkpoint.load_or_start(tmp_path / "a", project)
    again = Checkpoint.load_or_start(tmp_path / "a", project)
    other = Checkpoint.load_or_start(tmp_path / "b", project)
    assert first.batch == again.batch != other.batch


def test_setup_replaces_the_old_trivial_validator_stopping_it_before_the_edit(project):
    changes = project.ensure_daemons(REQUIRED_DAEMONS, OBSOLETE_DAEMONS)
    assert changes == [
        "removed daemon sample_trivial_validator from config.xml",
        "added daemon script_validator to config.xml",
    ]
    config = (project.root / "config.xml").read_text()
    assert "sample_trivial_validator" not in config
    for daemon in REQUIRED_DAEMONS:
        assert f"<cmd>{daemon}</cmd>" in config
    # bin/stop ran while the old validator was still listed (so it was stopped), bin/start
    # after the edit with five daemons and no trivial validator.
    assert (project.root / "tool_calls").read_text().split("\n")[:2] == ["stop 5 1", "start 5 0"]
    assert project.ensure_daemons(REQUIRED_DAEMONS, OBSOLETE_DAEMONS) == []
    assert len((project.root / "tool_calls").read_text().splitlines()) == 2


def test_a_failing_tool_is_one_line_naming_it_its_message_and_what_to_check(project):
    tool = project.root / "bin" / "create_work"
    tool.write_text("#!/bin/sh\necho 'create_work: error opening database' >&2\nexit 1\n")
    tool.chmod(0o755)
    with pytest.raises(BoincToolError) as raised:
        project.run_tool("create_work", "--appname", "pymw")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("bin/create_work failed (exit 1): create_work: error opening")
    assert "database server is running" in message and "run the program again" in message


def test_registry_entries_of_the_previous_version_still_name_their_task_dir(project):
    path = Path(registry.entry_path(str(project.root), 5))
    path.parent.mkdir()
    path.write_text("/home/user/tasks\n")  # PyMW 0.4's entry: the bare task directory
    assert registry.read_entry(str(project.root), 5) == {"task_dir": "/home/user/tasks"}
    assert registry.read_entry(str(project.root), 6) is None  # a remote batch
    claimed = registry.claim_batch(str(project.root), 6)
    assert registry.read_entry(str(project.root), claimed) is None  # not written yet
