"""`manifest.json` beside the worker files, and the rule that published files never change.

BOINC identifies app-version files by name (which carries the version) and caches them on
volunteers' hosts forever, so a file with the same name must keep the same bytes.
"""

import dataclasses
import hashlib
import json
from pathlib import Path

from pyboinc_build.errors import ImmutableFileError

FORMAT = "pymw-worker-manifest/1"


@dataclasses.dataclass(frozen=True)
class BuiltFile:
    path: Path  # where it is now (staging)
    file: str  # name (relative path) in the output directory
    role: str  # "executable", "stdlib", "layer" or "executable-onedir"
    version: str
    version_option: str  # the option to bump when it changed
    packages: tuple[str, ...] = ()  # a layer's resolved packages, "numpy==2.2.6"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_immutable(out_dir: Path, built_files: list[BuiltFile]) -> None:
    """Refuse to overwrite a published file with different bytes under the same version."""
    for built in built_files:
        published = out_dir / built.file
        if built.role == "executable-onedir" or not published.exists():
            continue  # the onedir variant is for local runs only, never published
        if sha256_of(published) != sha256_of(built.path):
            raise ImmutableFileError(
                f"{published} already exists with different content; BOINC files are "
                f"immutable, so bump the version ({built.version_option}, now {built.version})"
            )


def make_manifest(
    *,
    os_name,
    platform,
    legacy_platforms,
    app_version,
    stdlib_version,
    python,
    portable,
    signing_public_key,
    files,
) -> dict:
    return {
        "format": FORMAT,
        "os": os_name,
        "platform": platform,
        "legacy_platforms": list(legacy_platforms),
        "app_version": app_version,
        "stdlib_version": stdlib_version,
        "python": python,
        "portable": portable,
        "signing_public_key": signing_public_key,
        "files": files,
    }


def file_entry(built: BuiltFile, installed: Path, platform: str) -> dict:
    entry = {
        "file": built.file,
        "role": built.role,
        "version": built.version,
        "platform": platform,
        "size": installed.stat().st_size,
        "sha256": sha256_of(installed),
    }
    if built.role == "layer":
        entry["packages"] = list(built.packages)
    return entry


def write(out_dir: Path, manifest: dict) -> Path:
    path = out_dir / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path
