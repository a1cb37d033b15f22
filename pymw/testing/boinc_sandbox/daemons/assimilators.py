"""`script_assimilator` and `sample_assimilator`: handing finished workunits over.

Stand in for BOINC's sched/script_assimilator.cpp and sched/sample_assimilator.cpp,
run by sched/assimilator.cpp's loop over workunits of one app that are ready to
assimilate:

- script_assimilator --app A --script S runs bin/S, `S <wu_id> <output paths...>` for a
  workunit with a canonical result and `S --error <error_mask> <wu_name> <wu_id>
  <batch>` otherwise. Like the real one, it keeps only the first word of the script
  argument (a BOINC bug drops the rest), and a non-zero exit of S stops the daemon.
- sample_assimilator moves the canonical result's outputs to
  results/<batch>/<wu_name>__file_<open_name> and writes results/<batch>/<wu_name>_error
  for a workunit in error.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from sqlite3 import Row

from ..constants import AssimilateState
from ..db import Database
from ..jobs import assimilated_output_path, output_files
from ..layout import Project
from .common import DaemonExit, Options, app_id, log, main_for, required

#: Assimilate one workunit (canonical result or None); raise DaemonExit to stop.
Handler = Callable[[Project, Row, Row | None], None]


def script_handler(script: str) -> Handler:
    def handle(project: Project, wu: Row, canonical: Row | None) -> None:
        program = str(project.bin_dir / script)
        if canonical is not None:
            paths = [str(f.path) for f in output_files(project, canonical["xml_doc_in"])]
            argv = [program, str(wu["id"]), *paths]
        else:
            argv = [
                program,
                "--error",
                str(wu["error_mask"]),
                wu["name"],
                str(wu["id"]),
                str(wu["batch"]),
            ]
        log(f"[{wu['name']}] running {' '.join(argv)}")
        try:
            status = subprocess.run(argv, cwd=project.bin_dir).returncode
        except OSError as error:
            raise DaemonExit(f"can't run {program}: {error}") from error
        if status:
            raise DaemonExit(f"[{wu['name']}] {script} exited with status {status}")

    return handle


def sample_handler(project: Project, wu: Row, canonical: Row | None) -> None:
    directory = project.results_dir / str(wu["batch"])
    directory.mkdir(parents=True, exist_ok=True)
    if canonical is None:
        (directory / f"{wu['name']}_error").write_text(f"{wu['error_mask']}\n")
        return
    for f in output_files(project, canonical["xml_doc_in"]):
        shutil.move(f.path, assimilated_output_path(project, wu["batch"], wu["name"], f.open_name))


def make_setup(program: str, handler_for: Callable[[Options], Handler]):
    def setup(project: Project, options: Options):
        app = required(options, "app", program)
        handler = handler_for(options)
        with project.connect() as database:
            appid = app_id(database, app)

        def one_pass(database: Database) -> bool:
            due = database.all(
                "SELECT * FROM workunit WHERE appid = ? AND assimilate_state = ?",
                appid,
                AssimilateState.READY,
            )
            for wu in due:
                canonical = database.one(
                    "SELECT * FROM result WHERE id = ?", wu["canonical_resultid"]
                )
                handler(project, wu, canonical)
                with database.transaction():
                    database.update(
                        "workunit",
                        wu["id"],
                        assimilate_state=AssimilateState.DONE,
                        transition_time=int(time.time()),
                    )
                log(f"[{wu['name']}] assimilated")
            return bool(due)

        return one_pass

    return setup


def _script_from(options: Options) -> Handler:
    script = required(options, "script", "script_assimilator").split()
    if not script:
        raise DaemonExit("script_assimilator: --script is empty")
    return script_handler(script[0])


script_main = main_for(
    "script_assimilator",
    make_setup("script_assimilator", _script_from),
    value_options=("app", "script"),
)
sample_main = main_for(
    "sample_assimilator",
    make_setup("sample_assimilator", lambda _options: sample_handler),
    value_options=("app",),
)
