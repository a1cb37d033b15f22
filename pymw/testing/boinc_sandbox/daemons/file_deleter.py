"""`file_deleter`: deletes the files of workunits and results that are done with.

Stands in for BOINC's sched/file_deleter.cpp. It deletes the input files of workunits
whose file_delete_state is READY (except <no_delete/> ones) and the output files of
results whose file_delete_state is READY. Like the real one it counts no references: an
input file that other workunits (of this or a later batch) still name is deleted all
the same, and those workunits' downloads then fail. It sleeps 5 s when idle, the real
default (`--sleep_interval`). It takes the real options
--preserve_wu_files, --preserve_result_files, --input_files_only and
--output_files_only; like the real one it has no -dont_delete_batches, and any unknown
option makes it exit.
"""

from __future__ import annotations

from ..constants import FILE_DELETER_SLEEP_SECONDS, FileDeleteState
from ..db import Database
from ..jobs import input_file_names, output_files
from ..layout import Project
from .common import Options, log, main_for

FLAGS = (
    "preserve_wu_files",
    "preserve_result_files",
    "input_files_only",
    "output_files_only",
    "dont_retry_errors",
)


def setup(project: Project, options: Options):
    inputs = "preserve_wu_files" not in options.flags and "output_files_only" not in options.flags
    outputs = (
        "preserve_result_files" not in options.flags and "input_files_only" not in options.flags
    )

    def one_pass(database: Database) -> bool:
        with database.transaction():
            wus = database.all(
                "SELECT id, name, xml_doc FROM workunit WHERE file_delete_state = ?",
                FileDeleteState.READY,
            )
            for wu in wus:
                if inputs:
                    for name in input_file_names(wu["xml_doc"], deletable_only=True):
                        log(f"[WU#{wu['id']}] deleting {name}")
                        project.download_path(name, create=False).unlink(missing_ok=True)
                database.update("workunit", wu["id"], file_delete_state=FileDeleteState.DONE)
            results = database.all(
                "SELECT id, name, xml_doc_in FROM result WHERE file_delete_state = ?",
                FileDeleteState.READY,
            )
            for r in results:
                if outputs:
                    for f in output_files(project, r["xml_doc_in"]):
                        f.path.unlink(missing_ok=True)
                database.update("result", r["id"], file_delete_state=FileDeleteState.DONE)
        return bool(wus or results)

    return one_pass


main = main_for("file_deleter", setup, flags=FLAGS, default_sleep=FILE_DELETER_SLEEP_SECONDS)
