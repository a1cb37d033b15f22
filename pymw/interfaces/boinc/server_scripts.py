"""The scripts PyMW installs into a project's bin/ for BOINC's daemons to run.

BOINC's script_assimilator and script_validator run programs from bin/ with the server's
python3, where PyMW may not be installed. So they are plain-stdlib modules of this
package copied there, with copies of the two modules they import: the batch registry,
and the worker contract, whose safe codec the validator decodes with (the same one the
master uses, never a second implementation).
"""

from __future__ import annotations

from pathlib import Path

from pyboinc import contract

from . import assimilator, registry
from . import validator as validator_script
from .constants import (
    ASSIMILATOR_SCRIPT,
    CONTRACT_MODULE,
    PUBLIC_FILE_MODE,
    REGISTRY_MODULE,
    VALIDATOR_SCRIPT,
)
from .project import write_if_changed

# bin/ name -> (module installed under it, file mode).
SERVER_FILES = {
    ASSIMILATOR_SCRIPT: (assimilator, 0o755),
    VALIDATOR_SCRIPT: (validator_script, 0o755),
    REGISTRY_MODULE: (registry, PUBLIC_FILE_MODE),
    CONTRACT_MODULE: (contract, PUBLIC_FILE_MODE),
}


def install_server_scripts(project_root: Path) -> list[str]:
    """Write the bin/ files that differ from this PyMW's; returns what was installed."""
    installed = []
    for name, (module, mode) in SERVER_FILES.items():
        source = Path(module.__file__).read_text(encoding="utf-8")
        if write_if_changed(project_root / "bin" / name, source, mode=mode):
            installed.append(f"installed bin/{name}")
    return installed
