"""The signature line of a signed task script: its format, and how to split it off.

A signed script is the script itself followed by one last line::

    # pymw-signature: ed25519 <base64 of the 64-byte Ed25519 signature>

The signature covers every byte before that line, the newline ending the script included.
The line is a comment, so a signed script runs unchanged on every engine and on workers
that do not check; and it travels inside the script, so no engine needs a second file.

The master (`pymw.signing`) writes the line and the worker (`pyboinc.verify`) checks it,
both through this module, so the format lives in one place. No cryptography here, and only
the standard library: the frozen worker imports it (base64 only when it checks a
signature: base64 imports re, milliseconds of every task's start-up).
"""

PREFIX = b"# pymw-signature: ed25519 "
SIGNATURE_BYTES = 64
# A signed script whose code imports modules sent with the task (files beside the script)
# says so with this line, alone on a line anywhere in what its signature covers. A
# signing worker then puts the script's folder on sys.path, last; without the line no file
# sent with a task is ever importable, since a hostile server can send any file.
SLOT_IMPORTS_LINE = b"# pymw-worker: import-from-slot"


class SignatureError(ValueError):
    """A script whose last line is not a well-formed signature line; says what is wrong."""


def covered_bytes(script: bytes) -> bytes:
    """What the signature of `script` covers: the script, ending with a newline."""
    return script if script.endswith(b"\n") else script + b"\n"


def append_signature(covered: bytes, signature: bytes) -> bytes:
    """The signed script: `covered` (see covered_bytes) and the signature line."""
    if len(signature) != SIGNATURE_BYTES or not covered.endswith(b"\n"):
        raise ValueError("need a 64-byte signature of bytes that end with a newline")
    import base64

    return covered + PREFIX + base64.b64encode(signature) + b"\n"


def split(signed: bytes) -> tuple[bytes, bytes]:
    """`(covered bytes, signature)` of a signed script; SignatureError says why it is not."""
    # The last line starts after the last newline that is not the file's final byte.
    start = signed.rfind(b"\n", 0, max(len(signed) - 1, 0)) + 1
    covered, line = signed[:start], signed[start:]
    if not line.startswith(PREFIX):
        raise SignatureError("it is not signed (its last line is not `# pymw-signature: ...`)")
    import base64
    import binascii

    try:
        signature = base64.b64decode(line[len(PREFIX) :].removesuffix(b"\n"), validate=True)
    except binascii.Error:
        raise SignatureError("its signature line does not hold valid base64") from None
    if len(signature) != SIGNATURE_BYTES:
        raise SignatureError(f"its signature is {len(signature)} bytes, not {SIGNATURE_BYTES}")
    return covered, signature


def asks_for_slot_imports(covered: bytes) -> bool:
    """True when the signed bytes `covered` hold SLOT_IMPORTS_LINE as a line of its own."""
    return any(line.rstrip() == SLOT_IMPORTS_LINE for line in covered.splitlines())
