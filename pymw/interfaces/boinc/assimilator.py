#!/usr/bin/env python3
"""PyMW's BOINC assimilator: delivers `pymw` workunit outputs to the master's task directory.

BOINCInterface installs this file as `<project>/bin/pymw_assimilator`, run by BOINC's
`script_assimilator --app pymw --script pymw_assimilator` (BOINC's own Python assimilators,
`pymw_assimilator.py` included, fail on Python 3). It is called as

    pymw_assimilator <wu_id> <output path>...                    canonical result found
    pymw_assimilator --error <error_mask> <wu_name> <wu_id> <batch>   workunit failed

It reads nothing it delivers: outputs are copied, then renamed into place (atomic, so
the master never sees half a file). A batch whose master runs on this machine names its
task directory in `<project>/pymw_batches/<batch name>`: outputs go there as
`<wu_name>.out`, failures as `<wu_name>.error` records. Other batches were submitted
remotely: their outputs go where sample_assimilator puts them,
`results/<batch>/<wu_name>__file_out` (and `<wu_name>_error`), which get_output3.php
serves. A non-zero exit stops the daemon, so it exits non-zero only when a delivery could
not be made (and must be retried); outputs of unknown workunits are left alone.
Standard library only: it runs with the server's python3.
"""

import json
import os
import re
import shutil
import sys

BATCH_REGISTRY_DIR = "pymw_batches"
OUTPUT_SUFFIX = ".out"
ERROR_SUFFIX = ".error"
RESULTS_DIR = "results"
OUTPUT_OPEN_NAME = "out"
# Upload names are <result name>_<file index>, and result names <wu name>_<replica>.
# PyMW's workunits are pymw_<batch>_<task key>.
RESULT_FILE = re.compile(r"^(?P<wu>pymw_(?P<batch>\d+)_[0-9a-f]+)_\d+(_r\d+)?_\d+$")
WU_NAME = re.compile(r"^pymw_(?P<batch>\d+)_[0-9a-f]+$")


def project_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def task_dir_of(batch: str) -> str | None:
    registry = os.path.join(project_dir(), BATCH_REGISTRY_DIR, f"pymw_{batch}")
    try:
        with open(registry, encoding="utf-8") as handle:
            return handle.read().strip()
    except FileNotFoundError:
        return None


def place(data_source: str | None, text: str | None, target: str) -> None:
    """Copy a file (or write text) next to `target`, then rename it into place."""
    temporary = f"{target}.part"
    if data_source is not None:
        shutil.copyfile(data_source, temporary)
    else:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
    os.replace(temporary, target)


def destination(batch: str, wu_name: str, error: bool) -> str:
    """The local master's task directory, or sample_assimilator's layout for remote batches."""
    task_dir = task_dir_of(batch)
    if task_dir is not None:
        return os.path.join(task_dir, wu_name + (ERROR_SUFFIX if error else OUTPUT_SUFFIX))
    results = os.path.join(project_dir(), RESULTS_DIR, batch)
    os.makedirs(results, exist_ok=True)
    return os.path.join(
        results, f"{wu_name}_error" if error else f"{wu_name}__file_{OUTPUT_OPEN_NAME}"
    )


def deliver_outputs(wu_id: str, paths: list[str]) -> int:
    for path in paths:
        match = RESULT_FILE.match(os.path.basename(path))
        if match is None:
            print(f"pymw_assimilator: workunit {wu_id}: {path} is not a PyMW output; skipped")
            continue
        place(path, None, destination(match["batch"], match["wu"], error=False))
    return 0


def record_error(error_mask: str, wu_name: str, wu_id: str, batch: str) -> int:
    match = WU_NAME.match(wu_name)
    if match is None:
        print(f"pymw_assimilator: workunit {wu_name} is not PyMW's; error not recorded")
        return 0
    record = {"wu_name": wu_name, "wu_id": wu_id, "batch": batch, "error_mask": error_mask}
    place(None, json.dumps(record), destination(match["batch"], wu_name, error=True))
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--error"] and len(argv) == 5:
        return record_error(*argv[1:])
    if len(argv) >= 1 and not argv[0].startswith("-"):
        return deliver_outputs(argv[0], argv[1:])
    print(f"pymw_assimilator: unexpected arguments {argv}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as error:  # cannot deliver now: stop the daemon so BOINC retries later
        print(f"pymw_assimilator: {error}", file=sys.stderr)
        sys.exit(1)
