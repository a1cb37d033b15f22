"""Find a built PyBOINC worker app (`-c dist/pyboinc -a 1.00_python311.zip`) for this host.

`nox -s build-workers` writes `<app dir>/<os>/manifest.json` beside the executable and the
stdlib zip; this module reads it. Running a batch never builds anything: a missing or
mismatched build is a one-line error saying what was found and how to build.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyboinc.layers import zip_argument

from .errors import UserError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "pymw-worker-manifest/1"
BUILD_HINT = "build one with `nox -s build-workers`"


@dataclass(frozen=True)
class WorkerApp:
    """A frozen worker executable, the stdlib zip it is run with, and its package layers."""

    executable: Path
    stdlib_zip: Path
    platform: str
    manifest: dict
    layers: tuple[Path, ...] = ()  # numpy, ... (`build-workers --with`; pyboinc.layers)

    def zip_argument(self) -> str:
        """The worker's stdlib-zip argument: the zip, then the layers (`pyboinc.layers`)."""
        return zip_argument(self.stdlib_zip, self.layers)


def host_os() -> str:
    """The `dist/pyboinc/<os>` folder name for this host."""
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    if sys.platform == "darwin":
        return "apple"
    return sys.platform


def load_manifest(os_dir: Path) -> dict:
    path = os_dir / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"no worker build in {os_dir} (no {MANIFEST_NAME}); {BUILD_HINT}") from None
    except (OSError, ValueError) as error:
        raise UserError(
            f"cannot read {path}: {error}; rebuild with `nox -s build-workers`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise UserError(f"{path} is not a PyMW worker manifest; {BUILD_HINT}")
    return manifest


def _files_with_role(manifest: dict, role: str) -> list[str]:
    return [entry["file"] for entry in manifest.get("files", []) if entry.get("role") == role]


def find_worker_app(app_dir: str | os.PathLike, app_args: Sequence[str] | str) -> WorkerApp:
    """The worker app in `app_dir` for this host, run with the stdlib zip named in `app_args`."""
    root = Path(app_dir).resolve()
    if not root.is_dir():
        raise UserError(f"custom worker directory {root} does not exist; {BUILD_HINT}")
    os_dir = root / host_os()
    if not os_dir.is_dir():
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "nothing"
        raise UserError(
            f"no worker for this OS ({host_os()}/) in {root}; found: {found}. "
            f"Build it on this OS with `nox -s build-workers`"
        )
    manifest = load_manifest(os_dir)
    executables = _files_with_role(manifest, "executable")
    if not executables or manifest.get("os") != host_os():
        import platform

        raise UserError(
            f"no executable for {host_os()} ({platform.machine()}) in {os_dir}; {BUILD_HINT}"
        )
    zips = _files_with_role(manifest, "stdlib")
    zip_name = app_args if isinstance(app_args, str) else next(iter(app_args), None)
    if not zip_name:
        raise UserError(
            f"the worker app needs its stdlib zip: add -a {zips[0] if zips else '<zip>'}"
        )
    if zip_name not in zips or not (os_dir / zip_name).is_file():
        raise UserError(
            f"stdlib zip {zip_name!r} not found in {os_dir}; found: {', '.join(zips) or 'none'}"
        )
    executable = os_dir / executables[0]
    if not executable.is_file():
        raise UserError(f"{executable} is listed in the manifest but missing; {BUILD_HINT}")
    layers = tuple(os_dir / name for name in _files_with_role(manifest, "layer"))
    for layer in layers:
        if not layer.is_file():
            raise UserError(f"{layer} is listed in the manifest but missing; {BUILD_HINT}")
    app = WorkerApp(executable, os_dir / zip_name, manifest.get("platform", ""), manifest, layers)
    try:
        app.zip_argument()
    except ValueError as error:
        raise UserError(f"the worker app cannot be named on its command line: {error}") from None
    return app
