"""The key a signing worker trusts: read at build time, frozen into the bundle.

`--signing-public-key PATH` names an Ed25519 public key, in PEM (`python -m pymw.signing
keygen` writes one) or OpenSSH's one-line format (`ssh-ed25519 AAAA...`, the partner of an
OpenSSH private key the master may sign with). Its raw 32 bytes become the generated module
`pyboinc._trusted_key`, which `freeze` adds to the bundle, never to the source tree; the
worker then refuses every task script not signed with the matching private key
(`pyboinc.verify`).

The same module fixes, by sha256, every file the worker may put on sys.path: the stdlib
zip and each package layer. They are built before the freeze, and the step that embeds the
key passes them all to `write_trusted_key_module` as `{file name: path}`: a new kind of
file on sys.path is one more entry of that mapping, and the worker checks it with
`pyboinc.verify.check_trusted_file(path, name, verify.trust())`.
"""

import base64
import binascii
import re
from collections.abc import Mapping
from pathlib import Path

from pyboinc_build.errors import ConfigurationError
from pyboinc_build.platform_data import import_repo_module

# Both formats are a fixed header, then the 32-byte key: in PEM, the DER of an Ed25519
# SubjectPublicKeyInfo (RFC 8410); in OpenSSH, the length-prefixed strings of RFC 8709.
_HEADERS = {
    "PEM": bytes.fromhex("302a300506032b6570032100"),
    "OpenSSH": b"\0\0\0\x0bssh-ed25519\0\0\0\x20",
}
_PEM_PUBLIC_KEY = re.compile(
    r"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----"
)
_OPENSSH_PUBLIC_KEY = re.compile(r"^ssh-ed25519\s+([A-Za-z0-9+/=]+)")
_KEYGEN_HINT = "make a pair with: python -m pymw.signing keygen --out DIR"


def read_public_key(path: str) -> tuple[str, bytes]:
    """(the key file's text, the raw 32-byte key) of the Ed25519 public key in `path`."""
    try:
        text = Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"cannot read --signing-public-key: {error}") from None
    if "PRIVATE KEY" in text:
        raise ConfigurationError(
            f"--signing-public-key {path} is a private key; give the public one (pymw_sign.pub)"
        )
    for kind, pattern in (("PEM", _PEM_PUBLIC_KEY), ("OpenSSH", _OPENSSH_PUBLIC_KEY)):
        match = pattern.search(text)
        if match is None:
            continue
        try:
            blob = base64.b64decode("".join(match.group(1).split()), validate=True)
        except binascii.Error:
            break
        header = _HEADERS[kind]
        if len(blob) == len(header) + 32 and blob.startswith(header):
            return text, blob[len(header) :]
        break
    raise ConfigurationError(
        f"--signing-public-key {path} is not an Ed25519 public key; {_KEYGEN_HINT}"
    )


def write_trusted_key_module(
    public_key: bytes, work_dir: Path, trusted_files: Mapping[str, Path], stdlib_zip: str
) -> Path:
    """Write `pyboinc._trusted_key` into `work_dir`; return its path.

    The worker will trust `public_key` (raw) and the files of `trusted_files` (file name ->
    built path: the stdlib zip, named `stdlib_zip`, and every layer), by their sha256. A
    fixed path under the work dir, not a temporary one: the builds stay reproducible.
    """
    verify = import_repo_module("pyboinc.verify")
    digests = {name: verify.sha256_of_file(str(path)) for name, path in trusted_files.items()}
    path = work_dir / "trusted_key" / "_trusted_key.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verify.trusted_key_module_source(public_key, digests, stdlib_zip))
    return path
