"""Code signing, as BOINC's `crypt.cpp`, `crypt_prog` and `sign_executable` do it.

Stands in for BOINC's key generation (`crypt_prog -genkey`) and `sign_executable`. The
key files and signatures are in BOINC's text format, so the real client accepts them:

- a key is the bit count on one line, then the bytes of RSAREF's R_RSA_PUBLIC_KEY or
  R_RSA_PRIVATE_KEY (without the bit count) in hex, 32 bytes a line, then a line `.`;
- a signature is a PKCS#1 v1.5 type-1 block over the file's md5 *hex string* (no
  DigestInfo, which is why `cryptography`'s sign() cannot be used), raised to d, in the
  same hex format.

Keys are generated with `cryptography` (the `boinc` extra), never by hand; it is
imported only when a key is made, so the rest of the sandbox loads without it.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import KEY_BITS, KEY_EXPONENT, MAX_RSA_MODULUS_LEN

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import rsa

PRIVATE_KEY_FILE = "code_sign_private"
PUBLIC_KEY_FILE = "code_sign_public"
_PRIME_LEN = MAX_RSA_MODULUS_LEN // 2


@dataclass(frozen=True)
class PublicKey:
    bits: int
    n: int
    e: int


@dataclass(frozen=True)
class PrivateKey:
    bits: int
    n: int
    e: int
    d: int

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.bits, self.n, self.e)


def hex_block(data: bytes) -> str:
    """BOINC's print_hex_data: 32 bytes a line, then `.`."""
    text = data.hex()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return "\n".join([*lines, "."]) + "\n"


def parse_hex_block(text: str) -> bytes:
    """Inverse of hex_block: hex digits up to the `.` line."""
    digits = []
    for line in text.strip().splitlines():
        line = line.strip()
        if line == ".":
            break
        digits.append(line)
    return bytes.fromhex("".join(digits))


def _be(value: int, length: int) -> bytes:
    return value.to_bytes(length, "big")


def _split_key(text: str) -> tuple[int, bytes]:
    first, _, rest = text.strip().partition("\n")
    return int(first), parse_hex_block(rest)


def public_key_text(key: PublicKey) -> str:
    body = _be(key.n, MAX_RSA_MODULUS_LEN) + _be(key.e, MAX_RSA_MODULUS_LEN)
    return f"{key.bits}\n{hex_block(body)}"


def parse_public_key(text: str) -> PublicKey:
    bits, body = _split_key(text)
    n = int.from_bytes(body[:MAX_RSA_MODULUS_LEN], "big")
    e = int.from_bytes(body[MAX_RSA_MODULUS_LEN : 2 * MAX_RSA_MODULUS_LEN], "big")
    return PublicKey(bits, n, e)


def private_key_text(key: rsa.RSAPrivateKey) -> str:
    """R_RSA_PRIVATE_KEY: modulus, publicExponent, exponent, prime[2], primeExponent[2],
    coefficient."""
    numbers = key.private_numbers()
    public = numbers.public_numbers
    body = b"".join(
        [
            _be(public.n, MAX_RSA_MODULUS_LEN),
            _be(public.e, MAX_RSA_MODULUS_LEN),
            _be(numbers.d, MAX_RSA_MODULUS_LEN),
            _be(numbers.p, _PRIME_LEN),
            _be(numbers.q, _PRIME_LEN),
            _be(numbers.dmp1, _PRIME_LEN),
            _be(numbers.dmq1, _PRIME_LEN),
            _be(numbers.iqmp, _PRIME_LEN),
        ]
    )
    return f"{key.key_size}\n{hex_block(body)}"


def parse_private_key(text: str) -> PrivateKey:
    bits, body = _split_key(text)
    m = MAX_RSA_MODULUS_LEN
    return PrivateKey(
        bits=bits,
        n=int.from_bytes(body[:m], "big"),
        e=int.from_bytes(body[m : 2 * m], "big"),
        d=int.from_bytes(body[2 * m : 3 * m], "big"),
    )


def write_code_sign_keys(key_dir: Path) -> None:
    """Generate the project's code-signing key pair (what `crypt_prog -genkey` does)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=KEY_EXPONENT, key_size=KEY_BITS)
    public = key.public_key().public_numbers()
    key_dir.mkdir(parents=True, exist_ok=True)
    private_path = key_dir / PRIVATE_KEY_FILE
    private_path.write_text(private_key_text(key))
    private_path.chmod(0o600)
    (key_dir / PUBLIC_KEY_FILE).write_text(
        public_key_text(PublicKey(key.key_size, public.n, public.e))
    )


def md5_file(path: Path) -> str:
    """md5 hex string of a file: what signatures cover and the client checks."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _modulus_len(n: int) -> int:
    return (n.bit_length() + 7) // 8


def sign_md5(md5_hex: str, key: PrivateKey) -> str:
    """The signature text of a file whose md5 is `md5_hex`."""
    k = _modulus_len(key.n)
    data = md5_hex.encode()
    block = b"\x00\x01" + b"\xff" * (k - 3 - len(data)) + b"\x00" + data
    signature = pow(int.from_bytes(block, "big"), key.d, key.n)
    return hex_block(_be(signature, k))


def verify_md5(md5_hex: str, signature_text: str, key: PublicKey) -> bool:
    """What the client checks before it runs a downloaded app file."""
    k = _modulus_len(key.n)
    block = _be(pow(int.from_bytes(parse_hex_block(signature_text), "big"), key.e, key.n), k)
    if not block.startswith(b"\x00\x01"):
        return False
    _, separator, data = block[2:].partition(b"\x00")
    return bool(separator) and data == md5_hex.encode()


def sign_executable_main(argv: list[str]) -> int:
    """`sign_executable <file> <private key file>`: print the signature text."""
    if len(argv) != 2:
        print("usage: sign_executable exec_path private_keyfile", file=sys.stderr)
        return 1
    path, key_path = Path(argv[0]), Path(argv[1])
    try:
        key = parse_private_key(key_path.read_text())
        md5 = md5_file(path)
    except (OSError, ValueError) as error:
        print(f"sign_executable: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(sign_md5(md5, key))
    return 0
