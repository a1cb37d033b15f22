#!/usr/bin/env python3
"""PyMW's BOINC assimilator: delivers `pymw` workunit outputs to the master's task directory.

BOINCInterface installs this file as `<project>/bin/pymw_assimilator`, run by BOINC's
`script_assimilator --app pymw --script pymw_assimilator` (BOINC's own Python assimilators,
`pymw_assimilator.py` included, fail on Python 3). It is called as

    pymw_assimilator <wu_id> <output path>...                    canonical result found
    pymw_assimilator --error <error_mask> <wu_name> <wu_id> <batch>   workunit failed

It reads nothing it delivers: outputs are copied, then renamed into place (atomic, so
the master never sees half a file). A batch whose master runs on this machine names its
task directory in its batch registry entry (registry.py): outputs go there as
`<wu_name>.out`, failures as `<wu_name>.error` records. Other batches were submitted
remotely: their outputs go where sample_assimilator puts them,
`results/<batch>/<wu_name>__file_out` (and `<wu_name>_error`), which get_output3.php
serves. A non-zero exit stops the daemon, so it exits non-zero only when a delivery could
not be made (and must be retried); outputs of unknown workunits are left alone.
Standard library only: it runs with the server's python3, and imports only the copies of
registry.py and pyboinc/contract.py (for the output's name) that setup installs beside it.
"""

import json
import os
import shutil
import sys

try:  # installed in the project's bin/, beside the copies setup puts there
    import pymw_contract as contract
    import pymw_registry as registry
except ImportError:  # imported as part of PyMW
    from pyboinc import contract
    from pymw.interfaces.boinc import registry


def task_dir_of(batch: str) -> str | None:
    entry = registry.read_entry(registry.project_dir_of_script(__file__), batch)
    return None if entry is None else entry.get("task_dir")


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
        suffix = registry.ERROR_SUFFIX if error else registry.OUTPUT_SUFFIX
        return os.path.join(task_dir, wu_name + suffix)
    project = registry.project_dir_of_script(__file__)
    results = os.path.join(project, registry.RESULTS_DIR, batch)
    os.makedirs(results, exist_ok=True)
    return os.path.join(
        results, f"{wu_name}_error" if error else f"{wu_name}__file_{contract.BOINC_FILES.output}"
    )


def deliver_outputs(wu_id: str, paths: list[str]) -> int:
    for path in paths:
        match = registry.RESULT_FILE.match(os.path.basename(path))
        if match is None:
            print(f"pymw_assimilator: workunit {wu_id}: {path} is not a PyMW output; skipped")
            continue
        place(path, None, destination(match["batch"], match["wu"], error=False))
    return 0


def record_error(error_mask: str, wu_name: str, wu_id: str, batch: str) -> int:
    match = registry.WU_NAME.match(wu_name)
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
