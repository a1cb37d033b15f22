"""`bin/stage_file` and `bin/dir_hier_path`: putting input files into download/.

Stands in for BOINC's `tools/stage_file` and `tools/dir_hier_path`, with their
command lines. stage_file moves the file into the hashed download hierarchy (copies
it with --copy), also writes `<name>.gz` with --gzip, accepts a file already staged
with the same contents, and refuses one that differs.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

from .layout import Project
from .signing import md5_file


def dir_hier_path_main(project: Project, argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: dir_hier_path filename", file=sys.stderr)
        return 1
    print(project.download_path(argv[0]))
    return 0


def stage_file_main(project: Project, argv: list[str]) -> int:
    copy = compress = False
    paths: list[str] = []
    for arg in argv:
        if arg == "--copy":
            copy = True
        elif arg == "--gzip":
            compress = True
        elif arg == "--verbose":
            continue
        elif arg.startswith("-"):
            print(f"stage_file: unknown option {arg}", file=sys.stderr)
            return 1
        else:
            paths.append(arg)
    if len(paths) != 1:
        print("usage: stage_file [--gzip] [--copy] path", file=sys.stderr)
        return 1
    source = Path(paths[0])
    if not source.is_file():
        print(f"stage_file: {source} not found", file=sys.stderr)
        return 1
    target = project.download_path(source.name)
    if target.exists():
        if md5_file(target) != md5_file(source):
            print(
                f"stage_file: a different file named {source.name} is already staged",
                file=sys.stderr,
            )
            return 1
        if not copy:
            source.unlink()
    elif copy:
        shutil.copyfile(source, target)
    else:
        shutil.move(source, target)
    if compress:
        with target.open("rb") as raw, gzip.open(f"{target}.gz", "wb") as packed:
            shutil.copyfileobj(raw, packed)
    return 0
