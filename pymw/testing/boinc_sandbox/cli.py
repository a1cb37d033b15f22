"""`pymw-boinc-sandbox start|stop|status|update --dir D [--clients N] [--json]`.

`start` makes the project in D (or reuses it), starts its HTTP side and daemons and N
real BOINC clients (default 1), and returns once they are up. Its clients run without
--exit_when_idle, so they stay for a user to watch. Like a real project's, the sandbox
lets them report and fetch on their own schedule (an idle client asks again after 10
min to 24 h): `update` makes them contact the scheduler now. Tests that want clients to
exit when done use `Sandbox.add_client(exit_when_idle=True)`.
`status` prints the URL, project directory, submitter authenticator, jobs and clients
(`--json` for scripts); `stop` ends everything `start` started. Without the `boinc`
extra (cryptography) it says what to install, on one line, with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from ..one_line_parser import OneLineParser
from .sandbox import Sandbox, SandboxError

PROG = "pymw-boinc-sandbox"
#: Modules of the `boinc` extra the sandbox needs (code-signing keys).
EXTRA_MODULES = ("cryptography",)
EXTRA_INSTALL = "pip install 'pymw[boinc]'"


def _check_extra() -> None:
    for name in EXTRA_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise SandboxError(f"the Python module {name!r} is missing: {EXTRA_INSTALL}") from error


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        error_type=SandboxError, prog=PROG, description="A loopback BOINC project for tests."
    )
    parser.add_argument("command", choices=("start", "stop", "status", "update"))
    parser.add_argument("--dir", required=True, type=Path, help="project directory")
    parser.add_argument("--clients", type=int, default=1, help="real clients to run (start)")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    return parser


def _print_status(status: dict) -> None:
    print(f"url:           {status['url']}")
    print(f"project_dir:   {status['project_dir']}")
    print(f"authenticator: {status['authenticator']}")
    print(f"http:          {'running' if status['http']['pid'] else 'not running'}")
    for daemon in status["daemons"]:
        print(f"daemon:        {'running' if daemon['running'] else 'stopped'}  {daemon['cmd']}")
    for client in status["clients"]:
        print(f"client:        {'running' if client['pid'] else 'stopped'}  {client['dir']}")
    print("jobs:          " + ", ".join(f"{k} {v}" for k, v in status["jobs"].items()))


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        _check_extra()
        if args.clients < 0:
            raise SandboxError("--clients must be 0 or more")
        if args.command == "start":
            sandbox = Sandbox.open(args.dir)
            sandbox.start(clients=args.clients, exit_when_idle=False)
            _print_status(sandbox.status())
        elif args.command == "stop":
            Sandbox.open(args.dir, create=False).stop()
        elif args.command == "update":
            Sandbox.open(args.dir, create=False).update_clients()
        else:
            status = Sandbox.open(args.dir, create=False).status()
            if args.json:
                print(json.dumps(status, indent=2))
            else:
                _print_status(status)
    except (SandboxError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    return 0
