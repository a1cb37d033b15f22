"""A signing worker under the real client, given workunits a hostile server made (slow).

The project first runs one signed batch of its own, which deploys the signing worker. Then
the "server" adds workunits of its own for the same app, as whoever holds the server can:
a script the project signed, with a command line and input files of the server's choosing.
These are issue 12's two bypasses, as real workunits:

- (A) the command line names an input file, `evil.zip`, as the stdlib zip;
- (B) the unsigned input names a data zip, and modules the worker imports while unpacking
  it (`zipfile_deflate64.py`, ...) are sent as input files.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import tasks_for_tests
from pyboinc_helpers import plant_trap_modules

from pyboinc import contract
from pymw.interfaces.boinc.project import BoincProject
from pymw.interfaces.boinc.workunits import BoincArgs, input_template, output_template
from pymw.programs import program_from_function
from pymw.signing import load_signing_key, sign_script
from pymw.testing.boinc_sandbox.constants import Outcome
from pymw.testing.boinc_sandbox.processes import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[4]
ZIP = "1.00_python311.zip"
# What the worker imports while it checks, runs and unpacks, as files a server could send.
TRAPS = ("zipfile_deflate64", "inflate64", "tempfile", "shutil", "random", "traceback")
TRAPS += ("linecache", "tokenize", "runpy", "pkgutil", "base64", "hashlib", "boinc", "cffi")


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def create_hostile_workunit(project_dir: Path, name: str, files: dict, command: str) -> None:
    """A workunit of app pymw with `files` (open name -> bytes) and `command` as its
    command line, made with the project's own create_work."""
    project = BoincProject.open(project_dir)
    args = BoincArgs()
    templates = {
        "in": input_template([(open_name, False) for open_name in files], args),
        "out": output_template(args),
    }
    for kind, text in templates.items():
        (project_dir / "templates" / f"{name}_{kind}").write_text(text)
    physical = []
    for open_name, content in files.items():
        physical.append(f"{name}_{open_name}")
        project.publish(physical[-1], content)
    project.run_tool(
        "create_work",
        *("--appname", "pymw", "--wu_name", name, "--command_line", command),
        *("--wu_template", f"templates/{name}_in", "--result_template", f"templates/{name}_out"),
        *physical,
    )


def reported_results(sandbox, names: tuple[str, ...]) -> dict[str, sqlite3.Row]:
    with sqlite3.connect(sandbox.project.db_path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT workunit.name AS wu, result.outcome, result.exit_status, result.stderr_out"
            " FROM result JOIN workunit ON result.workunitid = workunit.id"
            " WHERE result.received_time > 0"
        ).fetchall()
    return {row["wu"]: row for row in rows if row["wu"] in names}


def test_hostile_workunits_run_no_unsigned_code(sandbox, volunteer, pyboinc_signing_dist, tmp_path):
    dist, key_path = pyboinc_signing_dist
    sandbox.add_client(exit_when_idle=False, fetch_minimal_work=False)
    master = [sys.executable, str(ROOT / "examples" / "monte_pi.py"), "-i", "boinc"]
    options = ["-p", str(sandbox.project_dir), "-c", str(dist), "-a", ZIP, "-n", "1"]
    run = subprocess.run(
        [*master, *options, "--sign-key", str(key_path), "-t", "1000"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert run.returncode == 0, run.stderr  # the signing worker runs the project's tasks

    key = load_signing_key(key_path)
    with_signed_script = sign_script(
        program_from_function(tasks_for_tests.read_data_file).script, key
    )
    evil_zip = zip_bytes({"traceback.py": "import sys\nsys.stderr.write('EVIL ZIP RAN')\n"})
    create_hostile_workunit(
        sandbox.project_dir,
        "hostile_a",
        {"pymw_task.py": with_signed_script, "in": contract.encode_input(()), "evil.zip": evil_zip},
        "pymw_task.py evil.zip in out",
    )
    traps = tmp_path / "traps"
    traps.mkdir()
    plant_trap_modules(traps, TRAPS)
    files = {
        "pymw_task.py": with_signed_script,
        "in": contract.encode_input(("numbers.txt",), data_zip="data.zip"),
        "data.zip": zip_bytes({"numbers.txt": "1 2 3"}),
        **{trap.name: trap.read_bytes() for trap in sorted(traps.iterdir())},
    }
    create_hostile_workunit(sandbox.project_dir, "hostile_b", files, f"pymw_task.py {ZIP} in out")

    names = ("hostile_a", "hostile_b")
    assert wait_until(lambda: len(reported_results(sandbox, names)) == 2, 300, interval=2)
    results = reported_results(sandbox, names)
    refused, unpacked = results["hostile_a"], results["hostile_b"]
    assert (refused["outcome"], refused["exit_status"]) == (Outcome.CLIENT_ERROR, 4)
    assert "refusing evil.zip: its content is not the 1.00_python311.zip" in refused["stderr_out"]
    assert "EVIL ZIP RAN" not in refused["stderr_out"]
    assert (unpacked["outcome"], unpacked["exit_status"]) == (Outcome.SUCCESS, 0), unpacked[
        "stderr_out"
    ]
    assert "TRAP" not in unpacked["stderr_out"]
