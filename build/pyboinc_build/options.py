"""Command-line options, parsed once into a frozen dataclass."""

import argparse
import dataclasses
import difflib
import re
import sys
from pathlib import Path

from pyboinc_build import signing
from pyboinc_build.errors import ConfigurationError
from pyboinc_build.platform_data import DATA_DIRS, REPO_ROOT

DEFAULT_APP_VERSION = "1.03"
DEFAULT_STDLIB_VERSION = "1.00"
_VERSION = re.compile(r"^\d+\.\d{2}$")  # BOINC app versions: major.minor, two minor digits


def host_os() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return sys.platform


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    os: str
    app_version: str
    stdlib_version: str
    portable: bool
    onedir: bool
    out_dir: Path
    work_dir: Path
    zip_compression: str
    signing_public_key: str | None  # the PEM text, recorded in the manifest
    trusted_key: bytes | None = None  # its raw Ed25519 key, frozen into the worker
    with_openssl: bool = False  # ssl and hashlib's OpenSSL backend (platform data: openssl)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, with a "did you mean" hint, as FatalError
        match = re.search(r"unrecognized arguments: (\S+)", message)
        if match:
            known = [o for a in self._actions for o in a.option_strings]
            close = difflib.get_close_matches(match.group(1).split("=")[0], known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
        raise ConfigurationError(message)


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="build_workers.py", description="Build the portable PyMW worker.")
    parser.add_argument(
        "--os",
        default=host_os(),
        choices=sorted(DATA_DIRS),
        help="target OS (default: this host's; PyInstaller cannot cross-build)",
    )
    parser.add_argument("--app-version", default=DEFAULT_APP_VERSION)
    parser.add_argument("--stdlib-version", default=DEFAULT_STDLIB_VERSION)
    parser.add_argument(
        "--portable",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="make the executable independent of the host's libc (default: on)",
    )
    parser.add_argument(
        "--onedir",
        action="store_true",
        help="also build a faster-starting onedir variant for local runs",
    )
    parser.add_argument(
        "--out",
        default=str(REPO_ROOT / "dist" / "pyboinc"),
        help="output root; files go to <out>/<os>/ (default: dist/pyboinc)",
    )
    parser.add_argument(
        "--work-dir",
        default=str(REPO_ROOT / "build" / "out"),
        help="PyInstaller work files (default: build/out)",
    )
    parser.add_argument(
        "--zip-compression",
        default="stored",
        choices=["deflated", "stored"],
        help="stdlib zip members (zipimport reads only these two)",
    )
    parser.add_argument(
        "--signing-public-key",
        default=None,
        metavar="PATH",
        help="Ed25519 public key (PEM) whose signatures the worker requires on task "
        "scripts; it refuses unsigned ones (docs/signing.md)",
    )
    parser.add_argument(
        "--with-openssl",
        action="store_true",
        help="also freeze ssl and hashlib's OpenSSL backend (libssl, libcrypto: about 2.3 MB "
        "more on the wire); without it, hashlib uses its builtin md5/sha*/blake2",
    )
    return parser


def parse(argv: list[str]) -> BuildOptions:
    args = make_parser().parse_args(argv)
    for name in ("app_version", "stdlib_version"):
        if not _VERSION.match(getattr(args, name)):
            flag = "--" + name.replace("_", "-")
            raise ConfigurationError(f"{flag} must look like 1.03, not {getattr(args, name)!r}")
    key_pem, trusted_key = None, None
    if args.signing_public_key:
        key_pem, trusted_key = signing.read_public_key(args.signing_public_key)
    return BuildOptions(
        os=args.os,
        app_version=args.app_version,
        stdlib_version=args.stdlib_version,
        portable=args.portable,
        onedir=args.onedir,
        out_dir=Path(args.out).resolve(),
        work_dir=Path(args.work_dir).resolve() / args.os,
        zip_compression=args.zip_compression,
        signing_public_key=key_pem,
        trusted_key=trusted_key,
        with_openssl=args.with_openssl,
    )
