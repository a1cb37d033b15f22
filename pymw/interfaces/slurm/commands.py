"""Slurm's command-line tools, run with their parsable output: sbatch, squeue, scancel,
scontrol.

No Python binding is used: pyslurm must match the cluster's Slurm release and build
against its headers, while the CLI is on every login node and its parsable formats
(`sbatch --parsable`, `squeue --Format`) are stable across releases.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError

logger = logging.getLogger("pymw.slurm")

PROGRAMS = ("sbatch", "squeue", "scancel", "scontrol")
#: Seconds a Slurm command may take (a busy slurmctld answers slowly, not never).
COMMAND_TIMEOUT = 120.0
#: squeue's answer when the only job asked about is gone from slurmctld's memory.
_UNKNOWN_JOB = "Invalid job id specified"
#: One line per array element: array job, element index, state, raw wait status, reason.
_STATE_FORMAT = "ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,Reason:"
#: Slurm's own default MaxArraySize, if scontrol does not say.
DEFAULT_MAX_ARRAY_SIZE = 1001
#: Hints for the sbatch errors users meet first, by a phrase of Slurm's message.
_HINTS = {
    "--time": "use minutes, MM:SS, HH:MM:SS, D-HH or D-HH:MM:SS (sbatch --time)",
    "partition": "see the cluster's partitions with `sinfo -s`",
    "account": "see your accounts with `sacctmgr show associations user=$USER`",
    "--mem": "use a size such as 500M or 4G (sbatch --mem)",
    "node configuration is not available": "no node offers that many CPUs or that much "
    "memory; check `sinfo -o '%P %c %m'`",
}


class SlurmCommandError(UserError):
    """A Slurm tool refused or failed; the message names the tool and Slurm's words."""


@dataclass(frozen=True)
class ElementState:
    """One array element as slurmctld reports it (squeue --array --states=all)."""

    array_job: str
    index: int
    state: str
    wait_status: int  # the batch script's raw wait status: exit code << 8 | signal
    reason: str

    @property
    def signal(self) -> int:
        return self.wait_status & 0x7F

    @property
    def exit_code(self) -> int:
        return self.wait_status >> 8


def parse_states(text: str) -> list[ElementState]:
    """Read squeue's `_STATE_FORMAT` lines; lines of plain jobs (no index) are skipped."""
    states = []
    for line in text.splitlines():
        fields = line.strip().split("|", 4)
        if len(fields) != 5 or not fields[1].isdigit():
            continue
        array_job, index, state, wait_status, reason = fields
        status = int(wait_status) if wait_status.isdigit() else 0
        states.append(ElementState(array_job, int(index), state.split()[0], status, reason))
    return states


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "no message"


def hint_for(message: str) -> str:
    for phrase, hint in _HINTS.items():
        if phrase.lower() in message.lower():
            return f"; {hint}"
    return ""


class SlurmCommands:
    """Runs Slurm's tools; a missing tool is a one-line UserError at construction."""

    def __init__(self) -> None:
        missing = [name for name in PROGRAMS if shutil.which(name) is None]
        if missing:
            raise UserError(
                f"{', '.join(missing)} not found on PATH: run the master on a Slurm login "
                "node or inside an allocation (salloc/sbatch), or choose another -i"
            )

    def run(self, program: str, *args: str) -> str:
        """The tool's stdout; a non-zero exit raises SlurmCommandError with its message."""
        try:
            done = subprocess.run(
                [program, *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            raise SlurmCommandError(
                f"{program} did not answer in {COMMAND_TIMEOUT:.0f} s (is slurmctld up? "
                "try `scontrol ping`)"
            ) from None
        except OSError as error:
            raise SlurmCommandError(f"cannot run {program}: {error}") from None
        if done.returncode != 0:
            raise SlurmCommandError(f"{program}: {first_line(done.stderr or done.stdout)}")
        return done.stdout

    def check_options(self, sbatch_args: Sequence[str]) -> None:
        """Ask slurmctld whether it would take a job with these options, submitting none
        (`sbatch --test-only`): an unknown partition or a bad time is a one-line error."""
        try:
            self.run("sbatch", "--test-only", *sbatch_args, "--wrap=true")
        except SlurmCommandError as error:
            message = str(error).removeprefix("sbatch: ")
            shown = " ".join(sbatch_args) or "no options"
            raise UserError(
                f"Slurm refused the job options ({shown}): {message}{hint_for(message)}"
            ) from None

    def submit(self, sbatch_args: Sequence[str], script: Path) -> str:
        """Submit a batch script; returns the job id (`sbatch --parsable`)."""
        output = self.run("sbatch", "--parsable", *sbatch_args, str(script))
        job_id = output.strip().split(";")[0]
        if not job_id.isdigit():
            raise SlurmCommandError(f"sbatch printed no job id: {first_line(output)}")
        return job_id

    def states(self, job_ids: Iterable[str]) -> list[ElementState]:
        """Every element of these array jobs that slurmctld still knows, in one call."""
        ids = ",".join(sorted(set(job_ids)))
        if not ids:
            return []
        try:
            output = self.run(
                "squeue", "--noheader", "--array", "--states=all", f"--jobs={ids}",
                f"--Format={_STATE_FORMAT}",
            )  # fmt: skip
        except SlurmCommandError as error:
            if _UNKNOWN_JOB in str(error):
                return []
            raise
        return parse_states(output)

    def find_by_name(self, names: Iterable[str]) -> dict[str, str]:
        """Job ids of this user's jobs with these names, by name."""
        wanted = ",".join(sorted(set(names)))
        if not wanted:
            return {}
        output = self.run(
            "squeue", "--noheader", "--me", "--states=all", f"--name={wanted}", "--format=%j|%F"
        )
        found = {}
        for line in output.splitlines():
            name, _, job_id = line.strip().partition("|")
            if job_id.isdigit():
                found[name] = job_id
        return found

    def cancel(self, jobs: Iterable[str]) -> bool:
        """scancel these jobs or elements (`123`, `123_4`); ones already gone are fine.
        False if slurmctld did not take the request."""
        targets = sorted(set(jobs) - {""})
        if not targets:
            return True
        try:
            self.run("scancel", *targets)
        except SlurmCommandError as error:
            logger.warning("could not cancel Slurm jobs %s: %s", ",".join(targets), error)
            return False
        return True

    def max_array_size(self) -> int:
        """The cluster's MaxArraySize: an array's indices must stay below it."""
        try:
            output = self.run("scontrol", "show", "config")
        except SlurmCommandError as error:
            logger.warning("scontrol show config failed (%s); assuming Slurm's default", error)
            return DEFAULT_MAX_ARRAY_SIZE
        match = re.search(r"^MaxArraySize\s*=\s*(\d+)", output, re.MULTILINE)
        return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE
