"""The `pymw` app's versions: PyBOINC frozen workers, or default workers using python3.

Each version goes to `apps/pymw/<major.minor>/<platform>/` with a `version.xml`, the
layout BOINC server 1.6's `update_versions` reads (it ignores the old
`apps/pymw/pymw_1.03_<platform>/`). BOINC files are immutable: a version directory that
exists with other content is an error asking for a new version number, never rewritten.
"""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pyboinc.layers import zip_argument

from ...errors import UserError
from ...worker_app import MANIFEST_NAME, load_manifest
from .constants import (
    APP_NAME,
    DEFAULT_WORKER_PLATFORMS,
    DEFAULT_WORKER_VERSION,
    FROZEN_WORKER_API_VERSION,
)
from .project import xml_text

# The default worker runs the contract's script with the host's Python. It writes
# boinc_finish_called itself (a script app must, or the client restarts it), and drops a
# stdlib zip name from the command line, which only the frozen worker takes.
_POSIX_WRAPPER = """#!/bin/sh
# PyMW default worker: runs a PyMW task with this host's python3 (the worker contract).
if [ $# -eq 4 ]; then set -- "$1" "$3" "$4"; fi
python3 "$@"
status=$?
echo "$status" > boinc_finish_called
exit $status
"""
_WINDOWS_WRAPPER = """@echo off
rem PyMW default worker: runs a PyMW task with this host's Python (the worker contract).
if not "%~4"=="" (python "%~1" "%~3" "%~4") else (python %*)
set status=%ERRORLEVEL%
echo %status%> boinc_finish_called
exit /b %status%
"""
_WRAPPERS = {
    "posix": ("pymw_python.sh", _POSIX_WRAPPER),
    "windows": ("pymw_python.cmd", _WINDOWS_WRAPPER),
}


@dataclass(frozen=True)
class VersionFile:
    """A file of an app version: where it comes from and its names on the host."""

    source: Path | None
    physical_name: str
    logical_name: str | None = None
    main_program: bool = False
    content: bytes | None = None
    gzip: bool = False  # sent gzip-compressed to clients (the portable worker: -4 MB)
    # Copied into each slot, or else left in the project directory behind a <soft_link>:
    # a package layer stays there, beside the cache the worker unpacks it into once.
    copy_file: bool = True

    def data(self) -> bytes:
        return self.content if self.content is not None else self.source.read_bytes()


@dataclass(frozen=True)
class AppVersion:
    version: str
    platform: str
    files: tuple[VersionFile, ...]
    api_version: str | None = None
    # What the command line passes as the stdlib zip, if anything: its logical name, then
    # the layers' (pyboinc.layers.zip_argument).
    stdlib_zip: str | None = None

    def directory(self, project_root: Path) -> Path:
        return project_root / "apps" / APP_NAME / self.version / self.platform

    def version_xml(self) -> str:
        root = ET.Element("version")
        for item in self.files:
            element = ET.SubElement(root, "file")
            ET.SubElement(element, "physical_name").text = item.physical_name
            if item.main_program:
                ET.SubElement(element, "main_program")
            if item.gzip:
                ET.SubElement(element, "gzip")
            if item.logical_name:
                ET.SubElement(element, "logical_name").text = item.logical_name
            if item.copy_file:
                ET.SubElement(element, "copy_file")
        if self.api_version:
            ET.SubElement(root, "api_version").text = self.api_version
        return xml_text(root)


def frozen_worker_versions(app_dir: str | Path, stdlib_zip: str) -> list[AppVersion]:
    """One version per platform name (legacy names included) of every OS built in app_dir."""
    root = Path(app_dir)
    if not root.is_dir():
        raise UserError(
            f"custom worker directory {root} does not exist; build it with `nox -s build-workers`"
        )
    versions = []
    for os_dir in sorted(path for path in root.iterdir() if (path / MANIFEST_NAME).is_file()):
        manifest = load_manifest(os_dir)
        by_role = {entry["role"]: entry for entry in manifest.get("files", [])}
        executable, zip_entry = by_role.get("executable"), by_role.get("stdlib")
        if executable is None or not (os_dir / executable["file"]).is_file():
            raise UserError(
                f"{os_dir} has no worker executable for {manifest.get('platform')}; "
                "rebuild it with `nox -s build-workers`"
            )
        if zip_entry is None or zip_entry["file"] != stdlib_zip:
            found = zip_entry["file"] if zip_entry else "none"
            raise UserError(
                f"{os_dir} has no stdlib zip {stdlib_zip!r} (found: {found}); "
                "pass the right one with -a"
            )
        built_platform = manifest["platform"]
        layers = [entry["file"] for entry in manifest["files"] if entry["role"] == "layer"]
        layer_names = [layer_logical_name(layer, built_platform) for layer in layers]
        argument = zip_argument(stdlib_zip, layer_names)
        if versions and versions[-1].stdlib_zip != argument:
            raise UserError(
                f"{os_dir} has other package layers than the builds before it "
                f"({argument} against {versions[-1].stdlib_zip}); build every OS with the "
                "same --with"
            )
        for platform in [built_platform, *manifest.get("legacy_platforms", [])]:
            # Physical names are global in download/: the zip differs per platform.
            zip_physical = f"{Path(stdlib_zip).stem}_{platform}.zip"
            files = (
                VersionFile(
                    os_dir / executable["file"],
                    executable["file"].replace(built_platform, platform),
                    main_program=True,
                    gzip=True,
                ),
                # gzip on the wire: a stored zip so sent is smaller than a deflated one,
                # and imports faster (docs/pyboinc.md).
                VersionFile(os_dir / stdlib_zip, zip_physical, logical_name=stdlib_zip, gzip=True),
                *(
                    VersionFile(
                        os_dir / layer,
                        layer.replace(built_platform, platform),
                        logical_name=name,
                        gzip=True,  # its members are deflated: 1.5% less, but free
                        copy_file=False,
                    )
                    for layer, name in zip(layers, layer_names, strict=True)
                ),
            )
            versions.append(
                AppVersion(
                    manifest["app_version"], platform, files, FROZEN_WORKER_API_VERSION, argument
                )
            )
    if not versions:
        found = ", ".join(sorted(p.name for p in root.iterdir())) or "nothing"
        raise UserError(
            f"no worker builds (manifest.json) in {root}; found: {found}. "
            "Build with `nox -s build-workers`"
        )
    return versions


def layer_logical_name(layer_file: str, platform: str) -> str:
    """A layer's name in the slot, the same on every platform (the workunit's command line
    is): `1.00_numpy-2.2.6_cp311_x86_64-pc-linux-gnu.zip` -> `1.00_numpy-2.2.6_cp311.zip`."""
    return layer_file.removesuffix(f"_{platform}.zip") + ".zip"


def default_worker_versions() -> list[AppVersion]:
    """Workers that run the host's python3: for trusted pools and testing, not volunteers."""
    versions = []
    for platform, kind in DEFAULT_WORKER_PLATFORMS.items():
        name, text = _WRAPPERS[kind]
        physical = f"{Path(name).stem}_{DEFAULT_WORKER_VERSION}_{platform}{Path(name).suffix}"
        files = (VersionFile(None, physical, main_program=True, content=text.encode()),)
        versions.append(AppVersion(DEFAULT_WORKER_VERSION, platform, files))
    return versions


def install(versions: list[AppVersion], project_root: Path) -> list[AppVersion]:
    """Place versions not yet installed; refuse a changed one. Returns the new ones."""
    added = []
    for version in versions:
        directory = version.directory(project_root)
        wanted = {item.physical_name: item.data() for item in version.files}
        wanted["version.xml"] = version.version_xml().encode()
        if directory.exists():
            present = {
                path.name: path.read_bytes() for path in directory.iterdir() if path.name in wanted
            }
            if present != wanted:
                raise UserError(
                    f"{directory} already holds other files; BOINC files are immutable, so "
                    f"bump the version (e.g. `nox -s build-workers -- --app-version ...`)"
                )
            continue
        staging = directory.with_name(directory.name + ".pymw-tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name, data in wanted.items():
            (staging / name).write_bytes(data)
            if any(item.main_program and item.physical_name == name for item in version.files):
                (staging / name).chmod(0o755)
        staging.rename(directory)
        added.append(version)
    return added
