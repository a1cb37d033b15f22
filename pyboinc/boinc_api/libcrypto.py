"""Ed25519 signature checks through OpenSSL's libcrypto, compiled into the BOINC binding.

The frozen worker checks signed task scripts (`pyboinc.verify`) with the libcrypto it
already bundles for `ssl` and `hashlib`; see `_evp_declarations`. No crypto is written
here: OpenSSL does all of it.
"""

from pyboinc.boinc_api._binding import Binding, LibcryptoError, check_libcrypto

__all__ = ["PUBLIC_KEY_BYTES", "LibcryptoError", "verify_ed25519"]

PUBLIC_KEY_BYTES = 32


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """True when `signature` is the Ed25519 signature of `message` by `public_key` (raw).

    Raises ValueError for a key that is not 32 bytes and LibcryptoError when OpenSSL
    cannot check at all; a wrong or malformed signature is simply False.
    """
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 key is {PUBLIC_KEY_BYTES} bytes, not {len(public_key)}")
    Binding.load()
    ffi, lib = Binding.ffi, Binding.lib
    raw_key = lib.EVP_PKEY_new_raw_public_key(
        lib.EVP_PKEY_ED25519, ffi.NULL, public_key, len(public_key)
    )
    check_libcrypto("EVP_PKEY_new_raw_public_key", raw_key != ffi.NULL)
    key = ffi.gc(raw_key, lib.EVP_PKEY_free)
    raw_context = lib.EVP_MD_CTX_new()
    check_libcrypto("EVP_MD_CTX_new", raw_context != ffi.NULL)
    context = ffi.gc(raw_context, lib.EVP_MD_CTX_free)
    initialized = lib.EVP_DigestVerifyInit(context, ffi.NULL, ffi.NULL, ffi.NULL, key)
    check_libcrypto("EVP_DigestVerifyInit", initialized == 1)
    verified = lib.EVP_DigestVerify(context, signature, len(signature), message, len(message))
    lib.ERR_clear_error()  # a mismatch leaves an error queued; it is an answer here
    return verified == 1
