"""Staged files many workunits name (task scripts, data zips), and who still needs them.

BOINC's file_deleter deletes a workunit's input files as soon as that workunit is
assimilated, counting no references (issue 10): a later batch, a second master, or a
resent workunit of the same batch would then name a file that is gone. So shared files
are `<no_delete/>` in the input template and PyMW counts their users itself:
`<project>/pymw_files/<file name>/pymw_<batch>` is one reference per batch. Staging adds
the batch's reference and writes the file if it is missing; a finished batch drops its
references and deletes each file nobody else refers to. Both hold one fcntl lock, so two
masters cannot interleave "it is there, keep it" with "nobody uses it, delete it". A
master killed before its cleanup releases on its rerun: same task directory, same
checkpoint, same batch.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .constants import SHARED_FILES_DIR, SHARED_FILES_LOCK
from .project import BoincProject

logger = logging.getLogger("pymw.boinc")


@contextmanager
def project_lock(project: BoincProject) -> Iterator[Path]:
    """Hold the project-wide lock of the reference records; yields their directory."""
    directory = project.root / SHARED_FILES_DIR
    directory.mkdir(exist_ok=True)
    with (directory / SHARED_FILES_LOCK).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield directory
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SharedFiles:
    """The shared files one batch refers to."""

    def __init__(self, project: BoincProject, batch: int) -> None:
        self.project = project
        self.reference = f"pymw_{batch}"

    def stage(self, name: str, content: bytes | str | Path) -> None:
        """Refer to `name` from this batch, staging it unless it is already there."""
        with project_lock(self.project) as directory:
            references = directory / name
            references.mkdir(exist_ok=True)
            (references / self.reference).touch()
            if not self.project.download_path(name).exists():
                self.project.publish(name, content)

    def release(self) -> list[str]:
        """Drop this batch's references; delete the files no batch refers to any more."""
        deleted = []
        with project_lock(self.project) as directory:
            for reference in directory.glob(f"*/{self.reference}"):
                reference.unlink()
                references = reference.parent
                if not any(references.iterdir()):
                    self.project.unpublish(references.name)
                    references.rmdir()
                    deleted.append(references.name)
        if deleted:
            logger.info("deleted shared files no batch uses: %s", ", ".join(deleted))
        return deleted
