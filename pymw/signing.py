"""Sign task scripts on the master, for workers built to refuse unsigned code.

PyMW's rule: sign off the server, and never ship unsigned code to a public project. The
private key stays on the machine that runs the master (a laptop), never on the BOINC
server, so whoever takes over the server can queue work but cannot make volunteers' workers
run it. Workers built with the public key (`build_workers.py --signing-public-key`) refuse
any script not signed with it; see docs/signing.md.

    python -m pymw.signing keygen --out DIR    # DIR/pymw_sign.pem (private), pymw_sign.pub

The signature line's format is `pyboinc.signature`, shared with the worker. cryptography
(an extra: `pip install 'pymw[boinc]'`) is imported only when a key is loaded or made.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from pyboinc import signature

from .errors import UserError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

# What `sign_key=` accepts: a key file's path or a loaded key.
SigningKeySource = Union[str, "os.PathLike[str]", "Ed25519PrivateKey"]

PRIVATE_KEY_FILE = "pymw_sign.pem"
PUBLIC_KEY_FILE = "pymw_sign.pub"
_NEEDS_CRYPTOGRAPHY = "signing needs the cryptography package: pip install 'pymw[boinc]'"


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise UserError(_NEEDS_CRYPTOGRAPHY) from None
    return ed25519


def load_signing_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in `path`: PEM (PKCS#8, as keygen writes) or OpenSSH.

    Every mistake is a one-line UserError: a missing file, a public key given for the
    private one, another key type, or an encrypted key (PyMW asks for no password).
    """
    ed25519 = _ed25519()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UserError(f"cannot read signing key {path}: {error.strerror}") from None
    if b"PUBLIC KEY" in data or data.startswith(b"ssh-"):
        raise UserError(
            f"{path} is a public key; signing needs the private one ({PRIVATE_KEY_FILE})"
        )
    loader = (
        serialization.load_ssh_private_key
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data
        else serialization.load_pem_private_key
    )
    try:
        key = loader(data, password=None)
    except TypeError:  # cryptography's way of saying the key needs a password
        raise UserError(
            f"{path} is encrypted; give PyMW an unencrypted key, kept off the server"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise UserError(f"{path} is not a PEM or OpenSSH private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        kind = type(key).__name__.lstrip("_").removesuffix("PrivateKey")
        raise UserError(
            f"{path} is not an Ed25519 key (it is {kind}); make one with: "
            "python -m pymw.signing keygen --out DIR"
        )
    return key


def sign_script(text: str, key: Ed25519PrivateKey) -> str:
    """`text` with the signature line that workers built with `key`'s public half check."""
    covered = signature.covered_bytes(text.encode("utf-8"))
    return signature.append_signature(covered, key.sign(covered)).decode("utf-8")


def resolve_signing_key(
    sign_key: SigningKeySource | None, interface: Any
) -> Ed25519PrivateKey | None:
    """The key a master signs with, or None: `sign_key` (a path or a loaded key) when
    given, else the one `interfaces.get_interface` loaded from `--sign-key` onto
    `interface`, so that PyMW 0.4 programs sign without a change."""
    if sign_key is None:
        return getattr(interface, "signing_key", None)
    if isinstance(sign_key, (str, os.PathLike)):
        return load_signing_key(sign_key)
    if not isinstance(sign_key, _ed25519().Ed25519PrivateKey):
        raise UserError(
            f"sign_key must be a key file's path or an Ed25519PrivateKey, "
            f"got {type(sign_key).__name__}"
        )
    return sign_key


# ------------------------------------------------------------------------ keygen command


def write_key_pair(out_dir: Path) -> tuple[Path, Path]:
    """Make a new key pair in `out_dir`: the private key (mode 0600) and the public one.

    An existing key file is never overwritten: workers already built with its public half
    would refuse everything signed with a new one.
    """
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization

    private_path, public_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise UserError(f"{path} already exists; move it away to make a new key pair")
    key = ed25519.Ed25519PrivateKey.generate()
    encoding = serialization.Encoding.PEM
    private_pem = key.private_bytes(
        encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        encoding, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as error:
        raise UserError(f"cannot write the key pair into {out_dir}: {error.strerror}") from None
    return private_path, public_path


def main(argv: list[str] | None = None) -> int:
    import argparse  # here: every master imports this module, only `keygen` parses options

    parser = argparse.ArgumentParser(
        prog="python -m pymw.signing", description="Make keys for signed task scripts."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="write a new Ed25519 key pair")
    keygen.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help=f"folder for {PRIVATE_KEY_FILE} and {PUBLIC_KEY_FILE}",
    )
    args = parser.parse_args(argv)
    try:
        private_path, public_path = write_key_pair(args.out)
    except UserError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return UserError.exit_code
    print(f"private key: {private_path} (keep it on this machine, never on the BOINC server)")
    print(f"public key:  {public_path} (build workers with --signing-public-key {public_path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
