"""Remote submission (`-i boinc --url`) when the server is slow or broken, against a fake
project web side: outputs asked for before they exist, and every failure one line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_boinc_project import FakeProject, serve
from one_line_errors import assert_one_line_error

from pymw import pymw
from pymw.errors import TaskError
from pymw.interfaces.boinc import remote
from pymw.interfaces.boinc.remote import BOINCRemoteInterface

ROOT = Path(__file__).resolve().parents[4]
MONTE_PI = ROOT / "examples" / "monte_pi.py"
# What job_file.php says when move_uploaded_file() cannot write into download/.
UNWRITABLE_DOWNLOAD = (
    "could not move /tmp/phpA1b2C3 to /home/boincadm/projects/test/download/1c4/jf_0123abcd"
)


def monte_pi(url: str, *args: str, cwd: Path, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(MONTE_PI), "-i", "boinc", "--url", url, "--auth", "k", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def assert_monte_pi_error(run: subprocess.CompletedProcess, *parts: str) -> str:
    line = assert_one_line_error(run, *parts)
    assert line.startswith("monte_pi.py: error: "), line
    return line


@pytest.fixture
def fake() -> Iterator[tuple[FakeProject, str]]:
    project = FakeProject()
    server, url = serve(project)
    yield project, url
    server.shutdown()
    server.server_close()


# Outputs that are not there yet.


def test_empty_answers_are_asked_again_and_never_decoded(fake, tmp_path):
    """query_batch says done; get_output3.php sends empty files until the assimilator ran.
    Decoding one would fail the task (MalformedResultError) and print no estimate."""
    project, url = fake
    project.empty_answers = 1
    run = monte_pi(url, "-n", "2", "-t", "2000000", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Estimate of pi: 3.141592" in run.stdout
    assert sorted(project.output_gets.values()) == [2, 2]  # one empty answer, then the file


def cube(x):
    return x**3


@pytest.fixture
def quick_retries(monkeypatch):
    monkeypatch.setattr(remote, "OUTPUT_RETRY_FIRST", 0.05)
    monkeypatch.setattr(remote, "OUTPUT_RETRY_MAX", 0.1)
    monkeypatch.setattr(remote, "POLL_MIN", 0.05)
    monkeypatch.setattr(remote, "POLL_MAX", 0.1)


def test_an_output_that_never_comes_fails_its_task_after_the_bound(
    fake, quick_retries, monkeypatch, tmp_path
):
    project, url = fake
    project.missing = {1}  # the assimilator never runs for it
    monkeypatch.setattr(remote, "OUTPUT_WAIT_SECONDS", 1.0)
    interface = BOINCRemoteInterface(url, "k", task_path=tmp_path / "tasks")
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        task = master.submit_task(cube, input_data=(2,))
        with pytest.raises(TaskError, match="no output 1 s after BOINC reported it done"):
            master.get_result(task)
    gets = project.output_gets[1]
    assert 3 <= gets <= 40  # asked again with backoff, not once, not in a busy loop


def test_one_missing_output_fails_only_its_task(fake, quick_retries, monkeypatch, tmp_path):
    project, url = fake
    project.missing = {1}  # jobs are numbered in submit order: the first one's output
    monkeypatch.setattr(remote, "OUTPUT_WAIT_SECONDS", 1.0)
    interface = BOINCRemoteInterface(url, "k", task_path=tmp_path / "tasks")
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [master.submit_task(cube, input_data=(i,)) for i in (2, 3)]
        with pytest.raises(TaskError, match="is the project's assimilator running"):
            master.get_result(tasks[0])
        assert master.get_result(tasks[1])[1] == [785398, 1000000]


# Every failure is one line naming the URL and the cause, exit status 2.


@pytest.mark.parametrize(
    ("url", "expected"),
    [("notaurl", "no scheme"), ("ftp://boinc.example.org/proj/", "ftp://")],
)
def test_a_url_that_is_not_http_is_refused_before_anything_else(url, expected, tmp_path):
    line = assert_monte_pi_error(monte_pi(url, cwd=tmp_path), url, expected)
    assert "http:// or https://" in line


def test_a_quorum_asked_of_a_remote_batch_is_refused_not_ignored(fake, tmp_path):
    _, url = fake
    assert_monte_pi_error(monte_pi(url, "-q", "2", cwd=tmp_path), "-q works with -p only")


def test_tls_errors_are_one_line(fake, tmp_path):
    _, url = fake  # plain http, asked for https
    https = url.replace("http://", "https://")
    assert_monte_pi_error(monte_pi(https, cwd=tmp_path), https, "TLS failed")


def test_a_page_that_is_not_xml_is_one_line(fake, tmp_path):
    project, url = fake
    project.reply = b"<br />\n<b>Fatal error</b>: Uncaught mysqli_sql_exception"
    assert_monte_pi_error(monte_pi(url, cwd=tmp_path), f"{url}submit_rpc_handler.php", "not XML")


def test_an_upload_the_web_server_cannot_write_tells_what_the_admin_must_fix(fake, tmp_path):
    """job_file.php runs as the web server's user, which make_project does not let write
    download/; the upload happens mid-run, when the batch is submitted."""
    project, url = fake
    project.upload_error = UNWRITABLE_DOWNLOAD
    line = assert_monte_pi_error(monte_pi(url, "-n", "1", cwd=tmp_path), url)
    assert re.search(r"admin must let the web server's user write .*download/", line), line


def test_without_the_boinc_extra_url_says_what_to_install(tmp_path):
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nfor name in ('requests', 'defusedxml', 'cryptography'):\n"
        "    sys.modules[name] = None\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(ROOT)])}
    run = monte_pi("https://boinc.example.org/proj/", cwd=tmp_path, env=env)
    assert_monte_pi_error(run, "pip install 'pymw[boinc]'")
