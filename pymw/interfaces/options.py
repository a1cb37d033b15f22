"""PyMW's command-line switches, and the engine they choose (PyMW 0.4's API).

    options, args = interfaces.parse_options()
    interface = interfaces.get_interface(options)

`pymw.interfaces` imports this module on first use of one of these names, so that a
program that only runs `pymw.Executor` imports neither argparse nor optparse.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from typing import Any, NoReturn

from ..errors import UserError
from . import ENGINES, missing_module
from .base import Interface


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (`prog: error: ...`) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_int(text: str) -> int:
    """An argparse `type` for a count of at least 1, as PyMW's own switches take it:
    `parser.add_argument("--tasks", type=interfaces.positive_int)`."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


_SWITCHES: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (
        ("-i", "--interface"),
        {
            "dest": "interface",
            "default": "generic",
            "help": f"engine to run tasks on: {', '.join(ENGINES)}",
        },
    ),
    (
        ("-n", "--num_workers"),
        {
            "dest": "num_workers",
            "default": os.cpu_count() or 1,
            "help": "number of workers (default: number of cores)",
        },
    ),
    (
        ("-p", "--project_home"),
        {
            "dest": "project_home",
            "default": None,
            "help": "BOINC project directory (boinc interface)",
        },
    ),
    (
        ("-q", "--quorum"),
        {
            "dest": "quorum",
            "default": None,
            "metavar": "N",
            "help": "boinc -p: run each task on N hosts and accept a result only when a "
            "majority of them agree (default: 2 runs, none checked; docs/boinc.md)",
        },
    ),
    (
        ("-c", "--app_path"),
        {
            "dest": "app_path",
            "default": None,
            "help": "custom worker app directory, e.g. dist/pyboinc",
        },
    ),
    (
        ("-a", "--app_args"),
        {
            "dest": "app_args",
            "default": "",
            "help": "custom worker app arguments, e.g. 1.00_python311.zip",
        },
    ),
    (
        ("--fresh_process",),
        {
            "dest": "fresh_process",
            "action": "store_true",
            "default": False,
            "help": "generic interface: a new process per task, as BOINC runs it",
        },
    ),
    (
        ("--url",),
        {
            "dest": "url",
            "default": None,
            "help": "BOINC project URL: submit remotely (boinc interface, no -p)",
        },
    ),
    (
        ("--auth",),
        {
            "dest": "auth",
            "default": None,
            "metavar": "KEY",
            "help": "account authenticator for --url (prefer --auth-file)",
        },
    ),
    (
        ("--auth-file",),
        {
            "dest": "auth_file",
            "default": None,
            "metavar": "PATH",
            "help": "file (mode 600) holding the authenticator for --url",
        },
    ),
    (
        ("--slurm-partition",),
        {
            "dest": "slurm_partition",
            "default": None,
            "metavar": "NAME",
            "help": "slurm: sbatch --partition",
        },
    ),
    (
        ("--slurm-account",),
        {
            "dest": "slurm_account",
            "default": None,
            "metavar": "NAME",
            "help": "slurm: sbatch --account",
        },
    ),
    (
        ("--slurm-time",),
        {
            "dest": "slurm_time",
            "default": None,
            "metavar": "TIME",
            "help": "slurm: time limit per task, as sbatch --time (MM, HH:MM:SS, D-HH:MM)",
        },
    ),
    (
        ("--slurm-cpus-per-task",),
        {
            "dest": "slurm_cpus_per_task",
            "default": None,
            "metavar": "N",
            "help": "slurm: sbatch --cpus-per-task",
        },
    ),
    (
        ("--slurm-mem",),
        {
            "dest": "slurm_mem",
            "default": None,
            "metavar": "SIZE",
            "help": "slurm: memory per task, as sbatch --mem (e.g. 2G)",
        },
    ),
    (
        ("--slurm-arg",),
        {
            "dest": "slurm_args",
            "action": "append",
            "default": None,
            "metavar": "ARG",
            "help": "slurm: another sbatch option, passed through (repeatable), "
            "e.g. --slurm-arg=--qos=debug",
        },
    ),
    (
        ("--slurm-python",),
        {
            "dest": "slurm_python",
            "default": None,
            "metavar": "PATH",
            "help": "slurm: the interpreter on the nodes (default: this master's)",
        },
    ),
    (
        ("--slurm-dir",),
        {
            "dest": "slurm_dir",
            "default": None,
            "metavar": "DIR",
            "help": "slurm: work directory the nodes share (default: ./pymw-slurm)",
        },
    ),
    (
        ("--sign-key",),
        {
            "dest": "sign_key",
            "default": None,
            "metavar": "PATH",
            "help": "sign task scripts with this Ed25519 private key (docs/signing.md)",
        },
    ),
    (
        ("-v", "--verbose"),
        {
            "dest": "verbose",
            "action": "count",
            "default": 0,
            "help": "log what PyMW does (-vv for debug detail)",
        },
    ),
]


# Switches that take a whole number of at least 1.
_COUNTS = ("num_workers", "quorum", "slurm_cpus_per_task")
# Each switch's flags, as an error names it ("-c/--app_path").
_FLAGS = {settings["dest"]: "/".join(flags) for flags, settings in _SWITCHES}


def parse_options(parser=None, args=None) -> tuple[Any, list[str]]:
    """Add PyMW's switches to `parser` (argparse or optparse), parse, return (options, args).

    With no parser, a new one is made and bad switches are one-line errors, exit status 2.
    """
    args = sys.argv[1:] if args is None else list(args)
    # A parser can be an optparse one only if its program imported optparse.
    optparse = sys.modules.get("optparse")
    if optparse is not None and isinstance(parser, optparse.OptionParser):
        for flags, settings in _SWITCHES:
            kind = {"type": "int"} if settings["dest"] in _COUNTS else {}
            parser.add_option(*flags, **settings, **kind)
        options, rest = parser.parse_args(args)
    else:
        own_parser = parser is None
        parser = parser or ArgumentParser(description="Run a PyMW program.")
        for flags, settings in _SWITCHES:
            kind = {"type": positive_int} if settings["dest"] in _COUNTS else {}
            parser.add_argument(*flags, **settings, **kind)
        if own_parser:
            parser.add_argument("args", nargs="*", help=argparse.SUPPRESS)
        options = parser.parse_args(args)
        rest = getattr(options, "args", [])
    if options.interface not in ENGINES:
        _fail(f"unknown interface {options.interface!r}; choose one of {', '.join(ENGINES)}")
    _configure_verbosity(options.verbose)
    sys.excepthook = _report_user_errors
    return options, rest


def get_interface(options: Any) -> Interface:
    """Build the engine chosen by `options.interface`; user errors end the program (exit 2).

    With `--sign-key`, the key is loaded first and kept on the engine as `signing_key`,
    where PyMW_Master and Executor find it: PyMW 0.4 programs pass only the interface.
    """
    signing_key = None
    if getattr(options, "sign_key", None):
        from ..signing import load_signing_key

        try:
            signing_key = load_signing_key(options.sign_key)
        except UserError as error:
            _fail(str(error))
    name = getattr(options, "interface", "generic")
    engine = ENGINES.get(name)
    if engine is None:
        _fail(f"unknown interface {name!r}; choose one of {', '.join(ENGINES)}")
    _check_switches(name, options)
    try:
        module = importlib.import_module(engine.module)
    except ModuleNotFoundError as error:
        if error.name == engine.module:
            _fail(f"the {name} interface is not available in this version of PyMW")
        _fail(missing_module(name, error.name))
    try:
        interface = getattr(module, engine.class_name).from_options(options)
    except UserError as error:
        _fail(str(error))
    if signing_key is not None:
        interface.signing_key = signing_key
    return interface


def _check_switches(name: str, options: Any) -> None:
    """Fail on a switch given that the `name` engine does not read (see `Engine.switches`)."""
    for dest, flags in _FLAGS.items():
        owners = [other for other, engine in ENGINES.items() if dest in engine.switches]
        if owners and name not in owners and getattr(options, dest, None):
            if len(owners) == 1:
                _fail(
                    f"{flags} is a switch of the {owners[0]} interface, not of {name}: "
                    f"add -i {owners[0]}, or drop it"
                )
            listed = f"{', '.join(owners[:-1])} and {owners[-1]}"
            _fail(f"{flags} is a switch of the {listed} interfaces, not of {name}: drop it")


def _user_error_in(error: BaseException | None) -> UserError | None:
    """The UserError behind `error`: the engine's own, chained under a BrokenMasterError."""
    while error is not None and not isinstance(error, UserError):
        error = error.__cause__
    return error


def _report_user_errors(kind, error, traceback) -> None:
    """A program that parsed PyMW's options ends on a user error (a BOINC tool failing
    mid-run, a server refusing a batch) as at start-up: one line and exit 2.

    Raising SystemExit from sys.excepthook sets the exit status and still runs atexit.
    """
    user_error = _user_error_in(error)
    if user_error is None:
        sys.__excepthook__(kind, error, traceback)
        return
    _fail(str(user_error))


def _fail(message: str) -> NoReturn:
    print(f"{os.path.basename(sys.argv[0]) or 'pymw'}: error: {message}", file=sys.stderr)
    raise SystemExit(UserError.exit_code)


def _configure_verbosity(verbose: int) -> None:
    if verbose:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("pymw").setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
