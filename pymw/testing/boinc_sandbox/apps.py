"""`bin/xadd` and `bin/update_versions`: loading apps and app versions into the DB.

Stands in for BOINC's `tools/xadd` and `tools/update_versions` (release 1.6.2), with
their command-line contracts: update_versions takes only --noconfirm and --verbose,
reads apps/<app>/<major.minor>/<platform>[__<plan_class>]/ with an optional
version.xml, signs unsigned files with bin/sign_executable and refuses to go on
without a key, and copies the files into download/.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .layout import Project
from .signing import PRIVATE_KEY_FILE, md5_file
from .templates import to_text

VERSION_DIR = re.compile(r"^(\d+)\.(\d+)$")
API_VERSION = re.compile(rb"API_VERSION_([0-9.]+)")


def xadd_main(project: Project, argv: list[str]) -> int:
    """Add project.xml's platforms and apps that the DB lacks."""
    if argv:
        print(f"xadd: unknown arg {argv[0]}", file=sys.stderr)
        return 1
    root = ET.parse(project.root / "project.xml").getroot()
    now = int(time.time())
    with project.connect() as database, database.transaction():
        for table in ("platform", "app"):
            for element in root.iter(table):
                name = element.findtext("name", "").strip()
                if not name or database.one(f"SELECT id FROM {table} WHERE name = ?", name):
                    continue
                friendly = element.findtext("user_friendly_name", name).strip()
                database.insert(table, name=name, user_friendly_name=friendly, create_time=now)
                print(f"  Processing {table} {name} ...added")
    return 0


@dataclass
class VersionFile:
    """One file of an app version (a <file> of version.xml)."""

    path: Path
    logical_name: str = ""
    main_program: bool = False
    copy_file: bool = False
    gzip: bool = False
    signature: str = ""

    @property
    def physical_name(self) -> str:
        return self.path.name


@dataclass
class AppVersion:
    """An app version directory found under apps/."""

    app: str
    app_id: int
    version_num: int
    platform: str
    platform_id: int
    plan_class: str
    directory: Path
    files: list[VersionFile] = field(default_factory=list)
    api_version: str = ""


class UpdateError(Exception):
    """update_versions must stop (real one exits with an error message)."""


def _scan_version_dir(version: AppVersion) -> None:
    version_xml = version.directory / "version.xml"
    present = sorted(
        p
        for p in version.directory.iterdir()
        if p.is_file() and p.name != "version.xml" and p.suffix != ".sig"
    )
    if version_xml.exists():
        root = ET.parse(version_xml).getroot()
        for element in root.iter("file"):
            name = element.findtext("physical_name", "").strip()
            path = version.directory / name
            if not path.is_file():
                raise UpdateError(f"{version_xml}: file {name} not found")
            version.files.append(
                VersionFile(
                    path=path,
                    logical_name=element.findtext("logical_name", "").strip(),
                    main_program=element.find("main_program") is not None,
                    copy_file=element.find("copy_file") is not None,
                    gzip=element.find("gzip") is not None,
                )
            )
        version.api_version = root.findtext("api_version", "").strip()
    elif len(present) == 1:
        version.files.append(VersionFile(path=present[0], main_program=True))
    else:
        raise UpdateError(f"{version.directory}: several files and no version.xml")
    if sum(f.main_program for f in version.files) != 1:
        raise UpdateError(f"{version.directory}: there must be exactly one main program")
    if not version.api_version:
        main = next(f for f in version.files if f.main_program)
        found = API_VERSION.search(main.path.read_bytes())
        version.api_version = found.group(1).decode() if found else ""


def find_new_versions(project: Project, database, verbose: bool) -> list[AppVersion]:
    """Version directories of known apps and platforms that are not in the DB yet."""
    platforms = {r["name"]: r["id"] for r in database.all("SELECT id, name FROM platform")}
    versions = []
    for app in database.all("SELECT id, name FROM app ORDER BY id"):
        app_dir = project.app_dir / app["name"]
        if not app_dir.is_dir():
            continue
        for version_dir in sorted(app_dir.iterdir()):
            match = VERSION_DIR.match(version_dir.name)
            if not match or not version_dir.is_dir():
                if verbose:
                    print(f"{version_dir} is not a version directory: skipping")
                continue
            version_num = int(match.group(1)) * 100 + int(match.group(2))
            for platform_dir in sorted(version_dir.iterdir()):
                platform, _, plan_class = platform_dir.name.partition("__")
                if not platform_dir.is_dir() or platform not in platforms:
                    if verbose:
                        print(f"{platform_dir}: unknown platform: skipping")
                    continue
                exists = database.one(
                    "SELECT id FROM app_version WHERE appid = ? AND version_num = ?"
                    " AND platformid = ? AND plan_class = ?",
                    app["id"],
                    version_num,
                    platforms[platform],
                    plan_class,
                )
                if exists:
                    if verbose:
                        print(f"{platform_dir}: already in the database")
                    continue
                version = AppVersion(
                    app=app["name"],
                    app_id=app["id"],
                    version_num=version_num,
                    platform=platform,
                    platform_id=platforms[platform],
                    plan_class=plan_class,
                    directory=platform_dir,
                )
                _scan_version_dir(version)
                versions.append(version)
    return versions


def _sign(project: Project, version: AppVersion) -> None:
    for f in version.files:
        signature_file = f.path.with_name(f.path.name + ".sig")
        if signature_file.exists():
            f.signature = signature_file.read_text()
            continue
        key = project.key_dir / PRIVATE_KEY_FILE
        if not key.exists():
            raise UpdateError(f"{f.path} has no .sig file and there is no code signing key {key}")
        run = subprocess.run(
            [str(project.bin_dir / "sign_executable"), str(f.path), str(key)],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            raise UpdateError(f"sign_executable failed for {f.path}: {run.stderr.strip()}")
        f.signature = run.stdout


def _install_file(project: Project, f: VersionFile) -> None:
    """Copy into download/ (flat, as app files are); refuse to replace different ones."""
    target = project.download_dir / f.physical_name
    if target.exists() and md5_file(target) != md5_file(f.path):
        raise UpdateError(f"{target} already exists and differs from {f.path}")
    shutil.copyfile(f.path, target)
    if f.gzip:
        with f.path.open("rb") as source, gzip.open(f"{target}.gz", "wb") as sink:
            shutil.copyfileobj(source, sink)


def _xml_doc(project: Project, version: AppVersion) -> str:
    """app_version.xml_doc: the files' <file_info>s and the <app_version> body."""
    parts = []
    app_version = ET.Element("app_version")
    ET.SubElement(app_version, "app_name").text = version.app
    ET.SubElement(app_version, "version_num").text = str(version.version_num)
    if version.api_version:
        ET.SubElement(app_version, "api_version").text = version.api_version
    for f in version.files:
        info = ET.Element("file_info")
        ET.SubElement(info, "name").text = f.physical_name
        ET.SubElement(info, "url").text = f"{project.download_url}/{f.physical_name}"
        ET.SubElement(info, "executable")
        ET.SubElement(info, "file_signature").text = "\n" + f.signature
        ET.SubElement(info, "nbytes").text = str(f.path.stat().st_size)
        ET.SubElement(info, "md5_cksum").text = md5_file(f.path)
        if f.gzip:
            # As update_versions writes it: clients with gzip support fetch NAME.gz.
            gz = project.download_dir / f"{f.physical_name}.gz"
            ET.SubElement(info, "gzipped_url").text = f"{project.download_url}/{gz.name}"
            ET.SubElement(info, "gzipped_nbytes").text = str(gz.stat().st_size)
        parts.append(to_text(info))
        ref = ET.SubElement(app_version, "file_ref")
        ET.SubElement(ref, "file_name").text = f.physical_name
        if f.logical_name:
            ET.SubElement(ref, "open_name").text = f.logical_name
        if f.main_program:
            ET.SubElement(ref, "main_program")
        if f.copy_file:
            ET.SubElement(ref, "copy_file")
    return "".join([*parts, to_text(app_version)])


def update_versions_main(project: Project, argv: list[str]) -> int:
    confirm, verbose = True, False
    for arg in argv:
        if arg == "--noconfirm":
            confirm = False
        elif arg == "--verbose":
            verbose = True
        else:
            print(f"unknown arg {arg}", file=sys.stderr)
            return 1
    with project.connect() as database:
        try:
            versions = find_new_versions(project, database, verbose)
            for version in versions:
                _sign(project, version)
        except UpdateError as error:
            print(f"update_versions: {error}", file=sys.stderr)
            return 1
        if not versions:
            print("No new app versions found.")
            return 0
        for version in versions:
            print(
                f"Found app version {version.app} {version.version_num} {version.platform}"
                f" {version.plan_class} api_version '{version.api_version}'"
            )
        if confirm:
            print("Continue [yn]? ", end="", flush=True)
            if sys.stdin.readline().strip().lower() != "y":
                return 1
        try:
            with database.transaction():
                for version in versions:
                    for f in version.files:
                        _install_file(project, f)
                    database.insert(
                        "app_version",
                        appid=version.app_id,
                        version_num=version.version_num,
                        platformid=version.platform_id,
                        plan_class=version.plan_class,
                        xml_doc=_xml_doc(project, version),
                        create_time=int(time.time()),
                    )
                    print(f"App version for {version.app} {version.platform} added")
        except UpdateError as error:
            print(f"update_versions: {error}", file=sys.stderr)
            return 1
    return 0
