"""Run staticx with fixed tar metadata, so that two builds give the same bytes.

staticx archives the program and its libraries with `tarfile`, which records each
extracted file's mtime and owner; BOINC files are immutable, so a rebuild with the same
version must be byte-identical. Usage: python -m pyboinc_build.reproducible_staticx ARGS...
"""

import sys
import tarfile

_original_addfile = tarfile.TarFile.addfile


def _addfile(self, tarinfo, fileobj=None):
    tarinfo.mtime = 0
    tarinfo.uid = tarinfo.gid = 0
    tarinfo.uname = tarinfo.gname = ""
    return _original_addfile(self, tarinfo, fileobj)


def main() -> None:
    tarfile.TarFile.addfile = _addfile
    from staticx.__main__ import main as staticx_main

    sys.argv[0] = "staticx"
    sys.exit(staticx_main())


if __name__ == "__main__":
    main()
