"""Job arrays on disk: the work directory's layout and the batch script every element runs.

    <work dir>/                       on a filesystem the compute nodes share
      checkpoint.json, lock           checkpoint.py
      scripts/<program>-<digest>.py   one per task function, linked into each task folder
      data/<archive>.zip              a task's data files, likewise
      arrays/<n>/job.sh               the batch script of array n
      arrays/<n>/<index>/             element <index>: pymw_task.py, input, output,
                                      slurm.out (the element's stdout and stderr)
      done/<n>.<index>                the worker's exit status, written when it ended

The batch script runs the worker contract in the element's folder, then records the exit
status in done/, so the master learns of a finished task from one directory listing, not
from Slurm. Only elements that end without a marker need Slurm's word (states.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyboinc import contract

from ..base import Job

FILES = contract.LOCAL_FILES  # a task folder holds the worker contract's three files
LOG_NAME = "slurm.out"
BATCH_SCRIPT_NAME = "job.sh"
LOG_TAIL_CHARS = 2000


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @property
    def done_dir(self) -> Path:
        return self.root / "done"

    def array_dir(self, number: int) -> Path:
        return self.root / "arrays" / str(number)

    def element_dir(self, number: int, index: int) -> Path:
        return self.array_dir(number) / str(index)

    def marker(self, number: int, index: int) -> Path:
        return self.done_dir / f"{number}.{index}"

    def make(self) -> None:
        for directory in (self.root / "scripts", self.root / "data", self.done_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def next_array_number(self, recorded: Sequence[int]) -> int:
        """Past every array in the checkpoint and every folder kept from earlier runs."""
        arrays = self.root / "arrays"
        on_disk = (
            [int(p.name) for p in arrays.iterdir() if p.name.isdigit()] if arrays.exists() else []
        )
        return max([*recorded, *on_disk], default=-1) + 1

    def script_for(self, job: Job) -> Path:
        program = job.program
        path = self.root / "scripts" / f"{program.name}-{program.digest}.py"
        if not path.exists():
            contract.write_atomically(str(path), program.script.encode("utf-8"))
        return path

    def archive_for(self, data_zip: Path) -> Path:
        """The master's data archive, copied where the nodes can read it (named by content)."""
        path = self.root / "data" / data_zip.name
        if not path.exists():
            shutil.copyfile(data_zip, f"{path}.part")
            os.replace(f"{path}.part", path)
        return path

    def write_element(self, number: int, index: int, job: Job) -> None:
        folder = self.element_dir(number, index)
        folder.mkdir(parents=True)
        (folder / FILES.script).symlink_to(self.script_for(job))
        if job.data_zip is not None:
            (folder / job.data_zip.name).symlink_to(self.archive_for(job.data_zip))
        contract.write_atomically(str(folder / FILES.input), job.input_bytes)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def worker_argv(worker: Sequence[str], stdlib_zip: Path | None) -> list[str]:
    """The worker contract's command, run in an element's folder."""
    return FILES.command(list(worker), stdlib_zip)


def batch_script(work: WorkDir, number: int, command: Sequence[str]) -> str:
    """Element $SLURM_ARRAY_TASK_ID of array `number`: run the task, record its status."""
    folder = shlex.quote(str(work.array_dir(number)))
    marker = shlex.quote(str(work.done_dir / f"{number}.")) + '"$SLURM_ARRAY_TASK_ID"'
    return f"""\
#!/bin/bash
# PyMW array {number}: each element runs one task through the worker contract in
# {work.array_dir(number)}/<element>/, then records the worker's exit status in
# {work.done_dir}/ (the master reads that directory; see pymw/interfaces/slurm/arrays.py).
cd {folder}/"$SLURM_ARRAY_TASK_ID" || exit {contract.EXIT_BAD_INVOCATION}
{shlex.join(command)}
status=$?
echo "$status" > {marker}.part && mv -f {marker}.part {marker}
exit "$status"
"""


def array_spec(indices: Sequence[int], throttle: int | None) -> str:
    """`--array` syntax for these indices (`0-999`, `1,4-6`), with `%N` if throttled."""
    ranges: list[str] = []
    ordered = sorted(indices)
    start = previous = ordered[0]
    for index in [*ordered[1:], None]:
        if index is not None and index == previous + 1:
            previous = index
            continue
        ranges.append(str(start) if start == previous else f"{start}-{previous}")
        if index is not None:
            start = previous = index
    spec = ",".join(ranges)
    return f"{spec}%{throttle}" if throttle is not None and throttle < len(ordered) else spec


def log_tail(work: WorkDir, number: int, index: int) -> str:
    """The end of the element's slurm.out: the worker's stderr and slurmstepd's errors."""
    try:
        text = (work.element_dir(number, index) / LOG_NAME).read_text(errors="replace")
    except OSError:
        return "no slurm.out"
    tail = " | ".join(line for line in text[-LOG_TAIL_CHARS:].splitlines() if line.strip())
    return f"slurm.out: {tail}" if tail else "slurm.out is empty"
