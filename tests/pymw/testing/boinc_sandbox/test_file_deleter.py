"""file_deleter as strict as BOINC's: it counts no references, honours <no_delete/>,
and sleeps 5 s when idle."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from conftest import APP, INPUT_TEMPLATE

from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import AssimilateState, FileDeleteState
from pymw.testing.boinc_sandbox.daemons import file_deleter, transitioner
from pymw.testing.boinc_sandbox.daemons.common import Options
from pymw.testing.boinc_sandbox.http_server import serve_in_thread
from pymw.testing.boinc_sandbox.processes import wait_until

#: The test app's input template with its file marked <no_delete/>.
NO_DELETE_TEMPLATE = INPUT_TEMPLATE.replace(
    "<number>0</number>", "<number>0</number>\n        <no_delete/>"
)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def _two_workunits_on_one_file(sandbox: Sandbox, tmp_path, name: str, template: str) -> None:
    (sandbox.project_dir / "templates" / f"{name}_in").write_text(template)
    source = tmp_path / name
    source.write_text("shared input")
    sandbox.run_tool("stage_file", str(source))
    lines = "".join(
        f"--wu_name {name}_{i} --wu_template templates/{name}_in {name}\n" for i in (1, 2)
    )
    sandbox.run_tool("create_work", "--appname", APP, "--stdin", stdin=lines)


def _assimilate(sandbox: Sandbox, wu_name: str) -> None:
    """The first workunit done and assimilated; then a transitioner and file_deleter pass."""
    project = sandbox.project
    with project.connect() as database:
        database.execute(
            "UPDATE workunit SET assimilate_state = ?, transition_time = 0 WHERE name = ?",
            AssimilateState.DONE,
            wu_name,
        )
        transitioner.setup(project, Options())(database)
        file_deleter.setup(project, Options())(database)


def test_a_shared_input_goes_with_the_first_assimilated_workunit(app_sandbox, tmp_path):
    _two_workunits_on_one_file(app_sandbox, tmp_path, "shared.txt", INPUT_TEMPLATE)
    _two_workunits_on_one_file(app_sandbox, tmp_path, "kept.txt", NO_DELETE_TEMPLATE)
    server = serve_in_thread(app_sandbox.project)
    try:
        url = app_sandbox.project.download_file_url("shared.txt")
        kept_url = app_sandbox.project.download_file_url("kept.txt")
        assert _status(url) == 200 and _status(kept_url) == 200
        _assimilate(app_sandbox, "shared.txt_1")
        _assimilate(app_sandbox, "kept.txt_1")
        # shared.txt_2 still names the file: its client's download now fails.
        assert _status(url) == 404
        assert _status(kept_url) == 200
    finally:
        server.shutdown()
        server.server_close()
    with app_sandbox.project.connect() as database:
        states = {
            r["name"]: r["file_delete_state"]
            for r in database.all("SELECT name, file_delete_state FROM workunit")
        }
    assert states["shared.txt_1"] == FileDeleteState.DONE
    assert states["shared.txt_2"] == FileDeleteState.INIT


@pytest.mark.parametrize("option", ["-dont_delete_batches", "--bogus"])
def test_unknown_options_stop_it(app_sandbox, option):
    run = app_sandbox.run_tool("file_deleter", option, check=False)
    assert run.returncode != 0 and option in run.stdout


def test_idle_file_deleter_sleeps_five_seconds(app_sandbox, tmp_path):
    """The real default: a file made deletable just after an idle pass lives ~5 s more."""
    _two_workunits_on_one_file(app_sandbox, tmp_path, "late.txt", INPUT_TEMPLATE)
    staged = app_sandbox.project.download_path("late.txt", create=False)
    log = app_sandbox.project.log_dir / "file_deleter.log"
    app_sandbox.run_tool("start")
    try:
        assert wait_until(lambda: log.exists() and "Starting" in log.read_text(), 10)
        time.sleep(0.5)  # its first pass found nothing: it sleeps now
        with app_sandbox.project.connect() as database:
            database.execute(
                "UPDATE workunit SET file_delete_state = ? WHERE name = ?",
                FileDeleteState.READY,
                "late.txt_1",
            )
        deletable_at = time.monotonic()
        assert wait_until(lambda: not staged.exists(), 10)
        assert time.monotonic() - deletable_at > 3
    finally:
        app_sandbox.run_tool("stop")
