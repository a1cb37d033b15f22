"""What the worker's two cffi builds share (the BOINC binding, the libsodium verifier).

Each compiles in a private scratch folder of its own (two builds at once cannot delete
each other's work) that the compiler records under one fixed name: compilers write source
paths into the debug info and the linker's build-id hashes them, so without the map the
worker's bytes would change with TMPDIR, and BOINC files are immutable under one name.
"""

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cffi

#: The path the compiler records for the scratch folder, whatever TMPDIR is.
RECORDED_SCRATCH = "/pyboinc-cffi-build"


def dirs_from_env(variable: str, default: list[str] | None = None) -> list[str]:
    """An os.pathsep-separated list of folders from the environment, or `default`."""
    value = os.environ.get(variable)
    return [item for item in value.split(os.pathsep) if item] if value else list(default or [])


def prefix_map_args(scratch: Path | None) -> list[str]:
    """Compiler flags recording `scratch` as RECORDED_SCRATCH (gcc and clang; MSVC has
    /pathmap, not used yet)."""
    if scratch is None or sys.platform == "win32":
        return []
    return [f"-ffile-prefix-map={scratch}={RECORDED_SCRATCH}"]


def compile_in_place(
    make_ffibuilder: Callable[[Path], cffi.FFI], package_dir: Path, verbose: bool = False
) -> Path:
    """Compile `make_ffibuilder(scratch)` in a private scratch folder and put the extension
    into `package_dir`, replacing the old one in one step (a process importing it meanwhile
    finds the old or the new module, never none); other builds of that module (another
    Python version, an old source) are removed."""
    with tempfile.TemporaryDirectory(prefix="pyboinc-cffi-") as private:
        scratch = Path(private) / "build"
        built = Path(make_ffibuilder(scratch).compile(tmpdir=str(scratch), verbose=verbose))
        target = package_dir / built.name
        incoming = target.with_name(f".{target.name}.{os.getpid()}")  # same folder: atomic
        shutil.copy2(built, incoming)
        os.replace(incoming, target)
    stem = target.name.split(".", 1)[0]
    for stale in package_dir.glob(f"{stem}.*"):
        if stale != target:
            stale.unlink()
    return target
