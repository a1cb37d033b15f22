"""The batch registry: which local master owns a batch, and how its results are checked.

`<project>/pymw_batches/pymw_<batch>` exists while a master on this machine runs (or
will rerun) that batch. It holds JSON: the master's task directory (where the assimilator
delivers outputs and the validator records disagreements), the compare policy and the
output size cap. Batches without an entry were submitted remotely: their outputs go to
BOINC's results/ layout and are compared exactly, with the default cap.

Standard library only: setup installs a copy of this file into the project's bin/ as
`pymw_registry.py`, beside the assimilator and validator scripts that import it, and they
run with the server's python3. Names come from BOINC's: an upload is
`<result name>_<file index>`, a result `<wu name>_<replica>` (`_r<random>` on newer
servers), and PyMW's workunits are `pymw_<batch>_<task key>`.
"""

import json
import os
import re

BATCH_REGISTRY_DIR = "pymw_batches"
OUTPUT_SUFFIX = ".out"
ERROR_SUFFIX = ".error"
# Lines of `<kind> <wu name> <detail>` the validator appends in the master's task directory.
VALIDATION_LOG = "validation.log"
RESULTS_DIR = "results"
RESULT_FILE = re.compile(r"^(?P<wu>pymw_(?P<batch>\d+)_[0-9a-f]+)_\d+(_r\d+)?_\d+$")
WU_NAME = re.compile(r"^pymw_(?P<batch>\d+)_[0-9a-f]+$")

COMPARE_EXACT = "exact"
COMPARE_FUZZY = "fuzzy"
# PyMW's historical max_nbytes: the output cap of batches the registry does not describe.
DEFAULT_MAX_NBYTES = 65536


def entry_path(project_root: str, batch: int | str) -> str:
    return os.path.join(project_root, BATCH_REGISTRY_DIR, f"pymw_{batch}")


def read_entry(project_root: str, batch: int | str) -> dict | None:
    """The batch's entry, or None for a batch no local master registered.

    PyMW before 0.5 wrote the bare task directory: read as an exact-compare entry.
    """
    try:
        with open(entry_path(project_root, batch), encoding="utf-8") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        return None
    if not text:
        return None  # just claimed: its master writes the entry before any workunit exists
    if not text.startswith("{"):
        return {"task_dir": text}
    try:
        entry = json.loads(text)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def claim_batch(project_root: str, first: int) -> int:
    """Create the entry of a new batch numbered `first` or the next free number.

    O_EXCL makes the claim atomic: two masters starting in the same second (from
    different task directories) get different batches, so neither overwrites the other's
    entry and their workunit names never collide.
    """
    os.makedirs(os.path.join(project_root, BATCH_REGISTRY_DIR), exist_ok=True)
    batch = first
    while True:
        try:
            descriptor = os.open(entry_path(project_root, batch), os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            batch += 1
            continue
        os.close(descriptor)
        return batch


def project_dir_of_script(script: str) -> str:
    """The project of a script installed in its bin/."""
    return os.path.dirname(os.path.dirname(os.path.abspath(script)))
