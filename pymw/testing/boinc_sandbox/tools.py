"""The project's bin/ programs: what each one runs, and how bin/ is filled.

bin/ holds small executable Python scripts, one per real BOINC tool or daemon, so that
callers run `bin/xadd`, `bin/update_versions --noconfirm`, `bin/create_work --stdin`,
`bin/start` ... as subprocesses exactly as on a real server. Each script calls `run`
with its name and the project directory it lives in.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from . import apps, control, create_work, staging
from .daemons import assimilators, feeder, file_deleter, transitioner, validators
from .layout import Project
from .signing import sign_executable_main

#: bin/<name> -> entry point taking (project, argv) and returning the exit status.
TOOLS: dict[str, Callable[[Project, list[str]], int]] = {
    "xadd": apps.xadd_main,
    "update_versions": apps.update_versions_main,
    "sign_executable": lambda _project, argv: sign_executable_main(argv),
    "stage_file": staging.stage_file_main,
    "dir_hier_path": staging.dir_hier_path_main,
    "create_work": create_work.create_work_main,
    "start": control.start_main,
    "stop": control.stop_main,
    "status": control.status_main,
    "feeder": feeder.main,
    "transitioner": transitioner.main,
    "file_deleter": file_deleter.main,
    "sample_trivial_validator": validators.trivial_main,
    "sample_bitwise_validator": validators.bitwise_main,
    "script_validator": validators.script_main,
    "script_assimilator": assimilators.script_main,
    "sample_assimilator": assimilators.sample_main,
}

SCRIPT = '''#!{python}
"""bin/{name} of a PyMW BOINC sandbox project (stands in for BOINC's {name})."""
import sys
from pathlib import Path

sys.path.insert(0, {package_root!r})
from pymw.testing.boinc_sandbox.tools import run

sys.exit(run({name!r}, Path(__file__).resolve().parent.parent, sys.argv[1:]))
'''


def install_bin(project: Project, python: str) -> None:
    """Write bin/<tool> for every tool, run by `python` (the one that made the project).

    The package's location goes into each script so that bin/ works from a source
    checkout as well as from an installed PyMW.
    """
    package_root = str(Path(__file__).resolve().parents[3])
    for name in TOOLS:
        path = project.bin_dir / name
        path.write_text(SCRIPT.format(python=python, name=name, package_root=package_root))
        path.chmod(0o755)


def run(name: str, project_dir: Path, argv: list[str]) -> int:
    return TOOLS[name](Project.load(project_dir), argv)
