"""Pack a task's `data_files` into one zip that travels with it.

BOINC allows no subdirectories and engines move files, not trees, so data files go as one
archive, unpacked in the worker's directory by `pyboinc.contract.safe_extract`. Each
distinct set of files is archived once per master and shared by all its tasks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .digests import short_digest
from .errors import UserError


def _entries(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, str]]:
    """(file on disk, name in the archive): files by base name, folders as trees."""
    entries = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            entries.append((path, path.name))
        elif path.is_dir():
            entries += [
                (item, item.relative_to(path.parent).as_posix())
                for item in sorted(path.rglob("*"))
                if item.is_file()
            ]
        else:
            raise UserError(f"data file {raw} does not exist; check the path given in data_files")
    names = [name for _, name in entries]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UserError(f"data_files has two files named {duplicates[0]!r}; rename one")
    return entries


class DataArchives:
    """The archives made so far, keyed by the files' paths, sizes and modification times."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._made: dict[tuple, Path] = {}

    def archive(self, paths: Iterable[str | os.PathLike]) -> Path | None:
        entries = _entries(paths)
        if not entries:
            return None
        key = tuple(
            (str(path.resolve()), path.stat().st_size, path.stat().st_mtime_ns, name)
            for path, name in entries
        )
        if key not in self._made:
            import zipfile  # only when a task has data files: it costs the master memory

            target = self._directory / f"pymw_data_{short_digest(repr(key).encode())}.zip"
            self._directory.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for path, name in entries:
                    archive.write(path, name)
            self._made[key] = target
        return self._made[key]
