"""The checkpoint in a Slurm work directory: which arrays this master submitted, and
which task each element runs, so a master killed and started again reattaches to them.

Tasks are named by content (`TaskKeys`, as BOINC workunits are), so the same program run
again asks for the same keys. An array is recorded before `sbatch` runs (with no job id)
and again with its id; an array left without one was being submitted when the master
died, and is found again by its job name.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pyboinc import contract

from ...errors import UserError

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_FORMAT = "pymw-slurm-checkpoint/1"
LOCK_NAME = "lock"


@dataclass
class ArrayRecord:
    """One submitted array: the task key of each element (by index) and its job id."""

    keys: list[str]
    job_id: str | None = None


@dataclass
class Checkpoint:
    path: Path
    token: str  # tells this work directory's job names from any other's
    arrays: dict[int, ArrayRecord] = field(default_factory=dict)

    @classmethod
    def load_or_start(cls, work_dir: Path) -> Checkpoint:
        path = work_dir / CHECKPOINT_NAME
        if not path.exists():
            return cls(path, secrets.token_hex(4))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format is not {CHECKPOINT_FORMAT}")
            arrays = {
                int(number): ArrayRecord(list(record["keys"]), record["job_id"])
                for number, record in data["arrays"].items()
            }
            return cls(path, str(data["token"]), arrays)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UserError(
                f"{path} is damaged ({error}); remove it (and cancel its jobs) to start over"
            ) from None

    def save(self) -> None:
        data = {
            "format": CHECKPOINT_FORMAT,
            "token": self.token,
            "arrays": {
                str(number): {"job_id": record.job_id, "keys": record.keys}
                for number, record in self.arrays.items()
            },
        }
        contract.write_atomically(str(self.path), json.dumps(data).encode())

    def job_name(self, number: int) -> str:
        return f"pymw-{self.token}-{number}"

    def latest_elements(self) -> dict[str, tuple[int, int]]:
        """The newest element (array, index) that ran each task key."""
        latest: dict[str, tuple[int, int]] = {}
        for number in sorted(self.arrays):
            for index, key in enumerate(self.arrays[number].keys):
                latest[key] = (number, index)
        return latest


class WorkDirLock:
    """One master per work directory: a second one would reattach to the first's jobs.

    An flock, so a master that was killed holds it no longer.
    """

    def __init__(self, work_dir: Path) -> None:
        self._handle: IO[str] | None = open(work_dir / LOCK_NAME, "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.seek(0)
            holder = self._handle.read().strip() or "another process"
            self.release()
            raise UserError(
                f"another PyMW master (pid {holder}) uses {work_dir}; give each program "
                "its own --slurm-dir"
            ) from None
        self._handle.truncate(0)
        self._handle.write(str(os.getpid()))
        self._handle.flush()

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
