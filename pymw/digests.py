"""Short content digests that name programs and data archives.

They come from the interpreter's own BLAKE2 (`_blake2`, what `hashlib.blake2b` is), not
from `hashlib` itself: importing hashlib loads OpenSSL's libcrypto, about 3.5 MB of the
master's memory, for a hash of a few kilobytes per program.
"""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # an interpreter built without its own hashes: OpenSSL's, then
    from hashlib import blake2b

DIGEST_BYTES = 8


def short_digest(data: bytes) -> str:
    """16 hex digits that tell contents apart (collision-resistant, not a secret)."""
    return blake2b(data, digest_size=DIGEST_BYTES).hexdigest()
