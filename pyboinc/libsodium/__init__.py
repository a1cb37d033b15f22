"""Ed25519 signature checks through libsodium, for the frozen worker (`pyboinc.verify`).

A signing worker needs one cryptographic call: `crypto_sign_verify_detached`. The whole
of libsodium is 0.36 MB (0.17 MB compressed in the executable), where OpenSSL's libcrypto,
which did this check before, is 4.7 MB (1.88 MB compressed), and the worker needs
libcrypto for nothing it must have (only `ssl` and a faster `hashlib`). No crypto is
written here: libsodium does all of it, and passes OpenSSL's own Ed25519 test vectors
(tests/pyboinc/test_signed_scripts.py).

The raw declarations are `_declarations`; `build_binding` compiles them into
`_sodium_cffi`. Only this module touches its `ffi` and `lib`.
"""

from types import ModuleType

from pyboinc.compiled_binding import CompiledBinding

__all__ = ["PUBLIC_KEY_BYTES", "SIGNATURE_BYTES", "SodiumError", "verify_ed25519"]

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_REBUILD_HINT = (
    "rebuild it with `python -m pyboinc.libsodium.build_binding` (needs libsodium-dev), "
    "or rebuild the worker with `nox -s build-workers`"
)


class SodiumError(RuntimeError):
    """libsodium cannot check at all: the binding is not built, or sodium_init failed. A
    signature that does not match is an answer (False), not this error."""


class Binding(CompiledBinding):
    """`_sodium_cffi`, loaded and initialised once per process."""

    what = "libsodium binding"
    error = SodiumError
    rebuild_hint = _REBUILD_HINT

    @staticmethod
    def _import() -> ModuleType:
        from pyboinc.libsodium import _sodium_cffi

        return _sodium_cffi

    @classmethod
    def _ready(cls, compiled: ModuleType) -> None:
        # 0: initialised now, 1: already was; -1: failed (libsodium's documented contract).
        if compiled.lib.sodium_init() < 0:
            raise SodiumError("sodium_init failed")


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is the Ed25519 signature of `message` by `public_key` (raw).

    Raises ValueError for a key that is not 32 bytes and SodiumError when libsodium cannot
    check at all; a wrong or malformed signature (any length but 64 included) is False.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 key is {PUBLIC_KEY_BYTES} bytes, not {len(public_key)}")
    if len(signature) != SIGNATURE_BYTES:
        return False
    Binding.load()
    return (
        Binding.lib.crypto_sign_verify_detached(signature, message, len(message), public_key) == 0
    )
