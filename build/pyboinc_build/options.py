"""Command-line options, parsed once into a frozen dataclass."""

import argparse
import dataclasses
import difflib
import re
import tempfile
from pathlib import Path

from pyboinc_build import layers, signing
from pyboinc_build.errors import ConfigurationError
from pyboinc_build.platform_data import REPO_ROOT, host_os, os_names

DEFAULT_APP_VERSION = "1.03"
DEFAULT_STDLIB_VERSION = "1.00"
_VERSION = re.compile(r"^\d+\.\d{2}$")  # BOINC app versions: major.minor, two minor digits


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
    packages: tuple[str, ...] = ()  # one package layer for these (--with, or pyproject)
    layer_version: str = layers.DEFAULT_LAYER_VERSION
    layers_only: bool = False  # add the layer to the worker already in out_dir
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
        choices=os_names(),
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
        "--with",
        dest="packages",
        action="append",
        default=None,
        metavar="REQUIREMENT",
        help="a PyPI package for the worker's package layer, e.g. numpy==2.2.6 (repeatable; "
        "default: [tool.pyboinc] packages in pyproject.toml)",
    )
    parser.add_argument("--layer-version", default=layers.DEFAULT_LAYER_VERSION)
    parser.add_argument(
        "--layers-only",
        action="store_true",
        help="build only the package layer and add it to the worker already in --out",
    )
    parser.add_argument(
        "--with-openssl",
        action="store_true",
        help="also freeze ssl and hashlib's OpenSSL backend (libssl, libcrypto: about 2.3 MB "
        "more on the wire); without it, hashlib uses its builtin md5/sha*/blake2",
    )
    return parser


def _check_writable_folder(flag: str, folder: Path) -> None:
    """Refuse, before any build step, a folder that is a file or cannot be written: the
    nearest part of it that exists must be a folder taking a probe file."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigurationError(f"{flag}: {existing} is a file; give a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ConfigurationError(
            f"{flag}: cannot write to {existing} ({error.strerror}); give a folder you can write"
        ) from None


def parse(argv: list[str]) -> BuildOptions:
    args = make_parser().parse_args(argv)
    for name in ("app_version", "stdlib_version", "layer_version"):
        if not _VERSION.match(getattr(args, name)):
            flag = "--" + name.replace("_", "-")
            raise ConfigurationError(f"{flag} must look like 1.03, not {getattr(args, name)!r}")
    if args.packages is None:
        packages = layers.pyproject_packages()
    else:
        packages = layers.check_specs(args.packages, "--with")
    if args.layers_only and not packages:
        raise ConfigurationError("--layers-only needs packages: add --with numpy, for example")
    out_dir, work_dir = Path(args.out).resolve(), Path(args.work_dir).resolve() / args.os
    _check_writable_folder("--out", out_dir / args.os)
    _check_writable_folder("--work-dir", work_dir)
    key_pem, trusted_key = None, None
    if args.signing_public_key:
        key_pem, trusted_key = signing.read_public_key(args.signing_public_key)
    return BuildOptions(
        os=args.os,
        app_version=args.app_version,
        stdlib_version=args.stdlib_version,
        portable=args.portable,
        onedir=args.onedir,
        out_dir=out_dir,
        work_dir=work_dir,
        zip_compression=args.zip_compression,
        signing_public_key=key_pem,
        trusted_key=trusted_key,
        packages=packages,
        layer_version=args.layer_version,
        layers_only=args.layers_only,
        with_openssl=args.with_openssl,
    )
