"""Load the compiled cffi module once and turn BOINC return codes into exceptions.

Only this package touches `ffi`/`lib`; everything else goes through the typed functions in
`pyboinc.boinc_api`.
"""

from pyboinc.boinc_api import _declarations

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


class LibcryptoError(RuntimeError):
    """An OpenSSL libcrypto call failed: no memory, or Ed25519 unavailable (a FIPS-only
    provider). A signature that does not match is an answer (False), not this error."""

    def __init__(self, call: str):
        super().__init__(f"{call} failed in OpenSSL's libcrypto")
        self.call = call


class BindingError(ImportError):
    """The compiled module `_boinc_cffi` is missing or was built from other declarations."""


class Binding:
    """The cffi module, loaded and checked once per process (cryptography's Binding)."""

    ffi = None
    lib = None

    @classmethod
    def load(cls) -> None:
        if cls.lib is not None:
            return
        try:
            from pyboinc.boinc_api import _boinc_cffi
        except ImportError as error:
            raise BindingError(
                f"the BOINC binding is not built ({error}); {_REBUILD_HINT}"
            ) from None
        compiled = _boinc_cffi.ffi.string(_boinc_cffi.lib.pyboinc_binding_stamp()).decode()
        expected = _declarations.binding_stamp()
        if compiled != expected:
            raise BindingError(
                f"the BOINC binding is stale (built from declarations {compiled}, the source "
                f"is {expected}); {_REBUILD_HINT}"
            )
        cls.ffi, cls.lib = _boinc_cffi.ffi, _boinc_cffi.lib


def check(call: str, code: int) -> int:
    """Raise BoincError(call, code) for a non-zero BOINC status; return 0 otherwise."""
    if code != 0:
        raise BoincError(call, code)
    return code


def check_libcrypto(call: str, ok: bool) -> None:
    """Raise LibcryptoError(call) unless `ok`, after clearing OpenSSL's error queue, which
    ssl and hashlib would otherwise report as their own later."""
    if not ok:
        Binding.lib.ERR_clear_error()
        raise LibcryptoError(call)
