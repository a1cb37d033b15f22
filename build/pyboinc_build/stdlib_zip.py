"""The versioned stdlib zip (`1.00_python311.zip`): `.pyc` only, reproducible.

- unchecked-hash pycs (PEP 552) and fixed member dates, sorted: two builds, same bytes;
- stored or deflated only: zipimport cannot read LZMA, bzip2 or Deflate64 members;
- no C extensions (they cannot load from a zip: the executable carries them).
"""

import dataclasses
import importlib._bootstrap_external as bootstrap_external
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
COMPRESSION = {"deflated": zipfile.ZIP_DEFLATED, "stored": zipfile.ZIP_STORED}
# Never in the zip, whatever the platform data says: not stdlib, or per-build config.
_ALWAYS_SKIPPED = {"site-packages", "lib-dynload", "__pycache__"}
# Test folders inside packages (ctypes/test, sqlite3/test, idlelib/idle_test, ...).
_TEST_DIRS = {"test", "tests", "idle_test"}


@dataclasses.dataclass(frozen=True)
class ZipReport:
    path: Path
    modules: int
    size: int
    skipped: tuple[str, ...]


def zip_name(stdlib_version: str, python_version=sys.version_info) -> str:
    return f"{stdlib_version}_python{python_version[0]}{python_version[1]}.zip"


def stdlib_dir() -> Path:
    # In a venv (nox), this is still the base interpreter's Lib folder.
    return Path(sysconfig.get_paths()["stdlib"])


def _wanted(relative: Path, excluded_packages: set) -> bool:
    parts = relative.parts
    top = parts[0].removesuffix(".py")
    if top in excluded_packages or parts[0] in _ALWAYS_SKIPPED or top.startswith("config-"):
        return False
    return not any(part in _TEST_DIRS or part in _ALWAYS_SKIPPED for part in parts[1:-1])


def frozen_in_every_worker() -> frozenset[str]:
    """The modules PyInstaller freezes into every executable, with their submodules (its
    base_library.zip: what Python needs to start). The zip leaves them out, since the
    executable's copy is the one imported anyway: 1.2 MB less on the wire. Should a later
    PyInstaller freeze fewer, the zip's bytes change and the immutability check asks for a
    new --stdlib-version."""
    from PyInstaller.compat import PY3_BASE_MODULES

    return frozenset(PY3_BASE_MODULES)


def iter_sources(source_root: Path, excluded_packages) -> list[Path]:
    excluded = set(excluded_packages)
    sources = (p.relative_to(source_root) for p in source_root.rglob("*.py"))
    return sorted((p for p in sources if _wanted(p, excluded)), key=lambda p: p.as_posix())


def compile_unchecked(source: bytes, display_name: str, optimize: int = 0) -> bytes:
    """A .pyc whose header holds the source hash, never checked: no mtime in the bytes."""
    code = compile(source, display_name, "exec", dont_inherit=True, optimize=optimize)
    source_hash = importlib.util.source_hash(source)
    return bytes(bootstrap_external._code_to_hash_pyc(code, source_hash, checked=False))


def build(
    out_path: Path,
    *,
    excluded_packages,
    compression: str = "deflated",
    optimize: int = 0,
    source_root: Path | None = None,
) -> ZipReport:
    """Build the zip in a fresh interpreter with a fixed hash seed.

    marshal's bytes depend on the compiling process: it writes a back-reference only for
    objects referenced more than once, counted by refcount, and sets keep their hash
    order. In a process that has imported much else (a test session, an IDE), the same
    source compiled to other .pyc bytes, and BOINC files are immutable under one name.
    """
    request = {
        "out_path": str(out_path),
        "excluded_packages": sorted(excluded_packages),
        "compression": compression,
        "optimize": optimize,
        "source_root": None if source_root is None else str(source_root),
    }
    result = subprocess.run(
        [sys.executable, __file__, json.dumps(request)],
        env={**os.environ, "PYTHONHASHSEED": "0"},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        from pyboinc_build.errors import BuildStepError  # not in the fresh interpreter

        raise BuildStepError(f"building the stdlib zip failed:\n{result.stderr[-2000:]}")
    made = json.loads(result.stdout)
    return ZipReport(Path(made["path"]), made["modules"], made["size"], tuple(made["skipped"]))


def _build_here(
    out_path: Path,
    *,
    excluded_packages,
    compression: str,
    optimize: int,
    source_root: Path | None,
) -> ZipReport:
    if source_root is None:
        source_root = stdlib_dir()
        excluded_packages = {*excluded_packages, *frozen_in_every_worker()}
    compress_type = COMPRESSION[compression]
    skipped, modules = [], 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_path, "w") as archive:
        for relative in iter_sources(source_root, excluded_packages):
            name = relative.as_posix()
            try:
                pyc = compile_unchecked((source_root / relative).read_bytes(), name, optimize)
            except (SyntaxError, ValueError):  # e.g. lib2to3 test data, if not excluded
                skipped.append(name)
                continue
            info = zipfile.ZipInfo(name[:-3] + ".pyc", date_time=FIXED_DATE)
            info.compress_type = compress_type
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, pyc, compresslevel=9 if compression == "deflated" else None)
            modules += 1
    return ZipReport(out_path, modules, out_path.stat().st_size, tuple(skipped))


if __name__ == "__main__":  # the fresh interpreter of `build`
    asked = json.loads(sys.argv[1])
    root = asked.pop("source_root")
    done = _build_here(
        Path(asked.pop("out_path")), source_root=Path(root) if root else None, **asked
    )
    print(json.dumps({**dataclasses.asdict(done), "path": str(done.path)}))
