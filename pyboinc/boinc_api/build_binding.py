"""Build the cffi module `pyboinc.boinc_api._boinc_cffi` (API mode, compiled as C++).

Run it to compile the module in place, next to this file (tests and local use)::

    python -m pyboinc.boinc_api.build_binding      # or: python pyboinc/boinc_api/build_binding.py

The worker build (`build/build_workers.py`) calls `compile_in_place()` too. Headers and
libraries come from Debian's libboinc-app-dev (`/usr/include/boinc`); set
`BOINC_INCLUDE_DIR` / `BOINC_LIBRARY_DIR` (os.pathsep-separated) elsewhere.
"""

import sys
from pathlib import Path

import cffi

if __package__ in (None, ""):  # run as a file: make `pyboinc` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyboinc import cffi_build
from pyboinc.boinc_api import _declarations

MODULE_NAME = "pyboinc.boinc_api._boinc_cffi"
PACKAGE_DIR = Path(__file__).resolve().parent


def make_ffibuilder(scratch: Path | None = None) -> cffi.FFI:
    """The cffi builder; with `scratch`, the compiler records it under a fixed name."""
    declared = _declarations.sections()
    builder = cffi.FFI()
    builder.cdef(declared["TYPES"] + declared["FUNCTIONS"])
    stamp = f'#define PYBOINC_BINDING_STAMP "{_declarations.binding_stamp()}"\n'
    builder.set_source(
        MODULE_NAME,
        declared["INCLUDES"] + stamp + declared["CUSTOMIZATIONS"],
        source_extension=".cpp",
        include_dirs=cffi_build.dirs_from_env("BOINC_INCLUDE_DIR", ["/usr/include/boinc"]),
        library_dirs=cffi_build.dirs_from_env("BOINC_LIBRARY_DIR", []),
        # libboinc_api.a is an empty stub on Debian: link the shared libraries.
        libraries=["boinc_api", "boinc"],
        extra_compile_args=cffi_build.prefix_map_args(scratch),
    )
    return builder


def compile_in_place(verbose: bool = False) -> Path:
    """Compile the module next to this file (`pyboinc.cffi_build.compile_in_place`)."""
    return cffi_build.compile_in_place(make_ffibuilder, PACKAGE_DIR, verbose)


if __name__ == "__main__":
    print(compile_in_place(verbose="-v" in sys.argv[1:]))
