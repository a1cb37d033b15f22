"""Job names from task content, shared by the engines that must find a job again.

A master killed and rerun (BOINC workunits, remote batches, Slurm arrays) asks for the same
names for the same tasks, so it can reattach instead of submitting twice.
"""

from __future__ import annotations

import hashlib

from .base import Job


def digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()


class TaskKeys:
    """Workunit (job) names from task content: the same program run again asks for the
    same names. Identical tasks are told apart by their order of submission."""

    def __init__(self, prefix: str = "pymw") -> None:
        self.prefix = prefix
        self._occurrences: dict[str, int] = {}

    def key_for(self, job: Job) -> str:
        data_name = job.data_zip.name if job.data_zip is not None else ""
        content = digest(job.program.digest.encode(), job.input_bytes, data_name.encode())
        occurrence = self._occurrences.get(content, 0)
        self._occurrences[content] = occurrence + 1
        return digest(content.encode(), str(occurrence).encode())[:16]

    def name_for(self, job: Job) -> str:
        return f"{self.prefix}_{self.key_for(job)}"
