"""Build the cffi module `pyboinc.libsodium._sodium_cffi` (API mode, C).

Run it to compile the module in place, next to this file (tests and local use)::

    python -m pyboinc.libsodium.build_binding

The worker build (`build/build_workers.py`) calls `compile_in_place()` too. Headers and
the library come from Debian's libsodium-dev; set `SODIUM_INCLUDE_DIR` /
`SODIUM_LIBRARY_DIR` (os.pathsep-separated) elsewhere.
"""

import sys
from pathlib import Path

import cffi

if __package__ in (None, ""):  # run as a file: make `pyboinc` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyboinc import cffi_build
from pyboinc.libsodium import _declarations

MODULE_NAME = "pyboinc.libsodium._sodium_cffi"
PACKAGE_DIR = Path(__file__).resolve().parent


def make_ffibuilder(scratch: Path | None = None) -> cffi.FFI:
    """The cffi builder; with `scratch`, the compiler records it under a fixed name."""
    builder = cffi.FFI()
    builder.cdef(_declarations.TYPES + _declarations.FUNCTIONS)
    builder.set_source(
        MODULE_NAME,
        _declarations.INCLUDES + _declarations.CUSTOMIZATIONS,
        include_dirs=cffi_build.dirs_from_env("SODIUM_INCLUDE_DIR"),
        library_dirs=cffi_build.dirs_from_env("SODIUM_LIBRARY_DIR"),
        libraries=["sodium"],
        extra_compile_args=cffi_build.prefix_map_args(scratch),
    )
    return builder


def compile_in_place(verbose: bool = False) -> Path:
    """Compile the module next to this file (`pyboinc.cffi_build.compile_in_place`)."""
    return cffi_build.compile_in_place(make_ffibuilder, PACKAGE_DIR, verbose)


if __name__ == "__main__":
    print(compile_in_place(verbose="-v" in sys.argv[1:]))
