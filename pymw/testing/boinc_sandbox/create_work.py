"""`bin/create_work`: making workunits from templates and staged input files.

Stands in for BOINC's `tools/create_work` (release 1.6.2), with its command line:
options start with `-` or `--`; positional arguments are staged input files (names in
the download hierarchy); `--stdin` reads one job per line, each line with its own
options and files. Templates default to templates/<app>_in and templates/<app>_out,
paths relative to the project directory. Values given on the command line take
precedence over the template's.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

from .constants import CREATE_WORK_DEFAULTS
from .db import DatabaseDown
from .layout import Project
from .signing import md5_file
from .templates import InputFile, TemplateError, process_input_template

#: Options that take one value, and which of them a --stdin line may set per job.
VALUE_OPTIONS = (
    "appname",
    "wu_name",
    "wu_template",
    "result_template",
    "batch",
    "priority",
    "command_line",
    "rsc_fpops_est",
    "rsc_fpops_bound",
    "rsc_memory_bound",
    "rsc_disk_bound",
    "delay_bound",
    "min_quorum",
    "target_nresults",
    "max_error_results",
    "max_total_results",
    "max_success_results",
    "opaque",
    "d",
)
JOB_OPTIONS = frozenset(VALUE_OPTIONS) - {"appname", "batch", "d"}
FLAG_OPTIONS = ("stdin", "verbose")


class UsageError(ValueError):
    """A command line create_work refuses."""


@dataclass
class JobSpec:
    """One job: options and input files (the whole command, or one --stdin line)."""

    options: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    remote_files: list[tuple[str, int, str]] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


def parse_args(argv: list[str], allowed: frozenset[str] | None = None) -> JobSpec:
    """Parse create_work's arguments (all options, or only `allowed` ones for a line)."""
    spec = JobSpec()
    i = 0
    while i < len(argv):
        arg = argv[i]
        name = arg.lstrip("-") if arg.startswith("-") and len(arg) > 1 else ""
        if not name:
            spec.files.append(arg)
        elif name == "remote_file":
            if i + 3 >= len(argv):
                raise UsageError("--remote_file needs url nbytes md5")
            url, nbytes, md5 = argv[i + 1 : i + 4]
            spec.remote_files.append((url, int(nbytes), md5))
            i += 3
        elif name in FLAG_OPTIONS and allowed is None:
            spec.flags.add(name)
        elif name in VALUE_OPTIONS and (allowed is None or name in allowed):
            if i + 1 >= len(argv):
                raise UsageError(f"option {arg} needs a value")
            spec.options[name] = argv[i + 1]
            i += 1
        else:
            raise UsageError(f"unknown option {arg}")
        i += 1
    return spec


def _input_files(project: Project, spec: JobSpec) -> list[InputFile]:
    files = []
    for name in spec.files:
        path = project.download_path(name, create=False)
        if not path.is_file():
            raise UsageError(f"input file {name} is not staged ({path} missing)")
        files.append(
            InputFile(
                name=name,
                url=project.download_file_url(name),
                md5=md5_file(path),
                nbytes=path.stat().st_size,
            )
        )
    for url, nbytes, md5 in spec.remote_files:
        files.append(InputFile(name=f"jf_{md5}", url=url, md5=md5, nbytes=nbytes))
    return files


def create_job(project: Project, database, app: str, app_id: int, spec: JobSpec) -> int:
    """Insert one workunit; returns its id."""
    options = spec.options
    name = options.get("wu_name") or f"{app}_{os.getpid()}_{time.time():.6f}"
    wu_template = options.get("wu_template", f"templates/{app}_in")
    result_template = options.get("result_template", f"templates/{app}_out")
    for template in (wu_template, result_template):
        if not (project.root / template).is_file():
            raise UsageError(f"can't read template {template}")
    if database.one("SELECT id FROM workunit WHERE name = ?", name):
        raise UsageError(f"a workunit named {name} already exists")
    try:
        workunit = process_input_template(
            (project.root / wu_template).read_text(),
            _input_files(project, spec),
            options.get("command_line"),
        )
    except TemplateError as error:
        raise UsageError(f"{wu_template}: {error}") from error
    values = dict(CREATE_WORK_DEFAULTS) | workunit.fields
    for key in CREATE_WORK_DEFAULTS:
        if key in options:
            values[key] = float(options[key])
    now = int(time.time())
    return database.insert(
        "workunit",
        create_time=now,
        appid=app_id,
        name=name,
        xml_doc=workunit.xml_doc,
        batch=int(options.get("batch", 0)),
        rsc_fpops_est=values["rsc_fpops_est"],
        rsc_fpops_bound=values["rsc_fpops_bound"],
        rsc_memory_bound=values["rsc_memory_bound"],
        rsc_disk_bound=values["rsc_disk_bound"],
        transition_time=now,
        delay_bound=int(values["delay_bound"]),
        min_quorum=int(values["min_quorum"]),
        target_nresults=int(values["target_nresults"]),
        max_error_results=int(values["max_error_results"]),
        max_total_results=int(values["max_total_results"]),
        max_success_results=int(values["max_success_results"]),
        result_template_file=result_template,
        priority=int(values["priority"]),
    )


#: What the real create_work prints when MySQL is down (boincerror(ERR_DB_CANT_CONNECT)).
DB_OPEN_ERROR = "create_work: error opening database: can't connect to database"


def create_work_main(
    project: Project, argv: list[str], stdin: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """bin/create_work; the web side calls it in-process with its own streams (it runs
    as the web user, who may not be able to reach the interpreter bin/ scripts name)."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    try:
        spec = parse_args(argv)
        app = spec.options.get("appname")
        if not app:
            raise UsageError("missing --appname")
        try:
            database = project.connect()
        except DatabaseDown:
            print(DB_OPEN_ERROR, file=stderr)
            return 1
        with database:
            row = database.one("SELECT id FROM app WHERE name = ?", app)
            if row is None:
                raise UsageError(f"app {app} not found")
            if "stdin" not in spec.flags:
                with database.transaction():
                    create_job(project, database, app, row["id"], spec)
                return 0
            for line in stdin:
                if not line.strip():
                    continue
                line_spec = parse_args(shlex.split(line), allowed=JOB_OPTIONS)
                job = JobSpec(
                    options=spec.options | line_spec.options,
                    files=line_spec.files,
                    remote_files=line_spec.remote_files,
                )
                with database.transaction():
                    create_job(project, database, app, row["id"], job)
    except (UsageError, ValueError) as error:
        print(f"create_work: {error}", file=stderr)
        return 1
    return 0
