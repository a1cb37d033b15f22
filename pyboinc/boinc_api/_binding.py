"""Load the compiled cffi module once and turn BOINC return codes into exceptions.

Only this package touches `ffi`/`lib`; everything else goes through the typed functions in
`pyboinc.boinc_api`.
"""

from __future__ import annotations

import sys

from pyboinc.compiled_binding import CompiledBinding

TYPE_CHECKING = False  # not typing's (see compiled_binding)
if TYPE_CHECKING:
    from types import ModuleType

_REBUILD_HINT = (
    "rebuild it with `python -m pyboinc.boinc_api.build_binding` (needs libboinc-app-dev), "
    "or rebuild the worker with `nox -s build-workers`"
)


class BoincError(RuntimeError):
    """A BOINC API call returned a non-zero status (see BOINC's error_numbers.h)."""

    def __init__(self, call: str, code: int):
        super().__init__(f"boinc_{call} failed with status {code}")
        self.call = call
        self.code = code


class BindingError(ImportError):
    """The compiled module `_boinc_cffi` is missing or was built from other declarations."""


class Binding(CompiledBinding):
    """`_boinc_cffi`, loaded and checked once per process."""

    what = "BOINC binding"
    error = BindingError
    rebuild_hint = _REBUILD_HINT

    @staticmethod
    def _import() -> ModuleType:
        from pyboinc.boinc_api import _boinc_cffi

        return _boinc_cffi

    @classmethod
    def _ready(cls, compiled: ModuleType) -> None:
        # The frozen worker's module was compiled from its own source in the same build
        # (and the worker carries no _shims.cpp to hash): only a source tree can be stale.
        if not getattr(sys, "frozen", False):
            cls._check_stamp(compiled)

    @staticmethod
    def _check_stamp(compiled_module) -> None:
        # Imported here: only a source tree checks (the declarations import pathlib and
        # hashlib, which the frozen worker's start would pay for nothing).
        from pyboinc.boinc_api import _declarations

        compiled = compiled_module.ffi.string(compiled_module.lib.pyboinc_binding_stamp()).decode()
        expected = _declarations.binding_stamp()
        if compiled != expected:
            raise BindingError(
                f"the BOINC binding is stale (built from declarations {compiled}, the source "
                f"is {expected}); {_REBUILD_HINT}"
            )


def check(call: str, code: int) -> int:
    """Raise BoincError(call, code) for a non-zero BOINC status; return 0 otherwise."""
    if code != 0:
        raise BoincError(call, code)
    return code
