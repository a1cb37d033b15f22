"""What every daemon shares: its command line, its log lines and its main loop.

Real BOINC daemons take `-d N` (log level) and exit on an option they do not know;
they check the `stop_daemons` switch on each pass and sleep when there is nothing to do
(`--sleep_interval N`). They exit when the database goes away ("DB connection lost"):
`bin/start --cron` (cron, every 5 min on a real server) starts them again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..constants import DAEMON_SLEEP_SECONDS, STOP_DAEMONS_FILE
from ..db import Database, DatabaseDown
from ..layout import Project


class DaemonExit(Exception):
    """The daemon must stop with this exit status (e.g. an assimilator's script failed)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Options:
    """Parsed daemon options: values of options that take one, and flags that were set."""

    values: dict[str, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)


def parse_options(
    program: str, argv: list[str], value_options: tuple[str, ...] = (), flags: tuple[str, ...] = ()
) -> Options:
    """Options may start with `-` or `--`; `-d N`, `--sleep_interval N` are common."""
    options = Options()
    values = ("d", "sleep_interval", *value_options)
    i = 0
    while i < len(argv):
        name = argv[i].lstrip("-") if argv[i].startswith("-") else ""
        if name in values and i + 1 < len(argv):
            options.values[name] = argv[i + 1]
            i += 2
        elif name in flags:
            options.flags.add(name)
            i += 1
        else:
            raise DaemonExit(f"{program}: unknown option '{argv[i]}'")
    return options


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} [normal   ] {message}", flush=True)


#: How often an idle daemon looks at the stop switch while it sleeps.
STOP_CHECK_SECONDS = 0.2


def _idle(project: Project, seconds: float) -> None:
    """Sleep between passes, but end the sleep once bin/stop sets the stop switch: a
    test's teardown need not wait out file_deleter's 5 s."""
    deadline = time.monotonic() + seconds
    stop_file = project.root / STOP_DAEMONS_FILE
    while not stop_file.exists() and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(left, STOP_CHECK_SECONDS))


def run_daemon(
    program: str,
    project: Project,
    options: Options,
    one_pass: Callable[[Database], bool],
    default_sleep: float = DAEMON_SLEEP_SECONDS,
) -> int:
    """Call one_pass until the stop switch is set; sleep after passes that did nothing."""
    sleep = float(options.values.get("sleep_interval", default_sleep))
    log(f"Starting {program}")
    try:
        with project.connect() as database:
            # A vanished project (directory deleted under it) also ends the daemon.
            while (project.root / "config.xml").exists() and not (
                project.root / STOP_DAEMONS_FILE
            ).exists():
                if not project.db_up_file.exists():
                    raise DaemonExit("DB connection lost, exiting")
                if not one_pass(database):
                    _idle(project, sleep)
    except DatabaseDown as error:
        log(f"boinc_db.open failed: {error}")
        return 1
    except DaemonExit as error:
        log(str(error))
        return error.status
    log(f"{program}: found {STOP_DAEMONS_FILE}, exiting")
    return 0


def main_for(
    program: str,
    setup: Callable[[Project, Options], Callable[[Database], bool]],
    value_options: tuple[str, ...] = (),
    flags: tuple[str, ...] = (),
    default_sleep: float = DAEMON_SLEEP_SECONDS,
) -> Callable[[Project, list[str]], int]:
    """Make a bin/ entry point: parse options, let setup build the pass, run the loop."""

    def main(project: Project, argv: list[str]) -> int:
        try:
            options = parse_options(program, argv, value_options, flags)
            one_pass = setup(project, options)
        except DatabaseDown as error:
            log(f"boinc_db.open failed: {error}")
            return 1
        except DaemonExit as error:
            log(str(error))
            return error.status
        return run_daemon(program, project, options, one_pass, default_sleep)

    return main


def required(options: Options, name: str, program: str) -> str:
    if name not in options.values:
        raise DaemonExit(f"{program}: --{name} is required")
    return options.values[name]


def app_id(database: Database, name: str) -> int:
    row = database.one("SELECT id FROM app WHERE name = ?", name)
    if row is None:
        raise DaemonExit(f"can't find app {name}")
    return row["id"]
