"""Build the cffi module `pyboinc.boinc_api._boinc_cffi` (API mode, compiled as C++).

Run it to compile the module in place, next to this file (tests and local use)::

    python -m pyboinc.boinc_api.build_binding      # or: python pyboinc/boinc_api/build_binding.py

The worker build (`build/build_workers.py`) calls `compile_in_place()` too. Headers and
libraries come from Debian's libboinc-app-dev (`/usr/include/boinc`) and libssl-dev; set
`BOINC_INCLUDE_DIR` / `BOINC_LIBRARY_DIR` (os.pathsep-separated, OpenSSL's folders too)
elsewhere.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import cffi

if __package__ in (None, ""):  # run as a file: make `pyboinc` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyboinc.boinc_api import _declarations

MODULE_NAME = "pyboinc.boinc_api._boinc_cffi"
PACKAGE_DIR = Path(__file__).resolve().parent


def _dirs_from_env(variable: str, default: list[str]) -> list[str]:
    value = os.environ.get(variable)
    return [item for item in value.split(os.pathsep) if item] if value else default


def make_ffibuilder() -> cffi.FFI:
    declared = _declarations.sections()
    builder = cffi.FFI()
    builder.cdef(declared["TYPES"] + declared["FUNCTIONS"])
    stamp = f'#define PYBOINC_BINDING_STAMP "{_declarations.binding_stamp()}"\n'
    builder.set_source(
        MODULE_NAME,
        declared["INCLUDES"] + stamp + declared["CUSTOMIZATIONS"],
        source_extension=".cpp",
        include_dirs=_dirs_from_env("BOINC_INCLUDE_DIR", ["/usr/include/boinc"]),
        library_dirs=_dirs_from_env("BOINC_LIBRARY_DIR", []),
        # libboinc_api.a is an empty stub on Debian: link the shared libraries. libcrypto
        # (Ed25519 checks of signed scripts) is the one Python's ssl and hashlib link.
        libraries=["boinc_api", "boinc", "crypto"],
    )
    return builder


ffibuilder = make_ffibuilder()


def compile_in_place(verbose: bool = False) -> Path:
    """Compile the module into a scratch dir and copy the extension next to this file."""
    for stale in PACKAGE_DIR.glob("_boinc_cffi.*"):
        stale.unlink()
    # A fixed scratch path: the compiler records source paths, and the worker build must
    # give the same bytes twice (BOINC files are immutable).
    scratch = Path(tempfile.gettempdir()) / "pyboinc-cffi-build"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        built = Path(make_ffibuilder().compile(tmpdir=str(scratch), verbose=verbose))
        target = PACKAGE_DIR / built.name
        shutil.copy2(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(compile_in_place(verbose="-v" in sys.argv[1:]))
