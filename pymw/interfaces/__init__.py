"""PyMW's engines, and the command-line switches that choose one (PyMW 0.4's API).

    options, args = interfaces.parse_options()
    interface = interfaces.get_interface(options)

Each engine lives in its own module behind the `Interface` protocol (`base.py`) and builds
itself from the parsed options with `from_options`. An engine whose module or dependency is
missing is reported on one line with what to install, and exit status 2. The switches,
their parsing and `get_interface` are `options.py`'s, imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .base import Completion, Interface, Job, Program

__all__ = [
    "ENGINES",
    "ArgumentParser",
    "Completion",
    "Interface",
    "Job",
    "Program",
    "get_interface",
    "parse_options",
    "positive_int",
]


@dataclass(frozen=True)
class Engine:
    """Where an engine lives, what a user installs to get it, and the engine-specific
    switches it reads (their `parse_options` dests). A switch that some engine lists but
    the chosen one does not is an error, so that `--url` without `-i boinc` does not
    quietly run the batch on this machine."""

    module: str
    class_name: str
    install_hint: str | None = None
    switches: tuple[str, ...] = ()


_WORKER_APP = ("app_path", "app_args")


ENGINES: dict[str, Engine] = {
    "generic": Engine(
        "pymw.interfaces.generic", "GenericInterface", switches=(*_WORKER_APP, "fresh_process")
    ),
    "mpi": Engine(
        "pymw.interfaces.mpi",
        "MPIInterface",
        "pip install 'pymw[mpi]' mpich  (mpi4py and an MPI library)",
    ),
    "condor": Engine(
        "pymw.interfaces.condor",
        "CondorInterface",
        "pip install 'pymw[condor]'  (the htcondor bindings)",
        switches=_WORKER_APP,
    ),
    "slurm": Engine(
        "pymw.interfaces.slurm",
        "SlurmInterface",
        switches=(
            *_WORKER_APP,
            "slurm_partition",
            "slurm_account",
            "slurm_time",
            "slurm_cpus_per_task",
            "slurm_mem",
            "slurm_args",
            "slurm_python",
            "slurm_dir",
        ),
    ),
    "grid_simulator": Engine("pymw.interfaces.grid_simulator", "GridSimulatorInterface"),
    "boinc": Engine(
        "pymw.interfaces.boinc",
        "BOINCInterface",
        "pip install 'pymw[boinc]'",
        switches=(*_WORKER_APP, "project_home", "quorum", "url", "auth", "auth_file"),
    ),
}


def missing_module(engine: str, module: str | None) -> str:
    """What to say when the `engine` interface lacks the Python module `module`."""
    hint = ENGINES[engine].install_hint
    return f"the {engine} interface needs the Python module {module!r}" + (
        f"; install it with: {hint}" if hint else ""
    )


def import_for(engine: str, module: str) -> ModuleType:
    """Import `module`, a dependency of the `engine` interface. Missing, it is a
    ModuleNotFoundError that says what to install, for a program that imports the
    interface itself (`Executor(interface=MPIInterface)`); `get_interface` says it in one
    line."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name != module:
            raise
        raise ModuleNotFoundError(missing_module(engine, module), name=module) from None


# Made on first use, in options.py: argparse is no part of running tasks.
_FROM_OPTIONS = frozenset({"ArgumentParser", "get_interface", "parse_options", "positive_int"})


def __getattr__(name: str) -> Any:
    if name in _FROM_OPTIONS:
        from . import options

        return getattr(options, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
