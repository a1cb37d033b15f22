"""Run PyInstaller on the worker runtime (`pyboinc/__main__.py`) with `worker.spec`.

The spec reads its settings from a JSON file named by PYBOINC_FREEZE_CONFIG, so that the
spec stays a fixed file and every choice is made (and tested) here.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from pyboinc_build.errors import BuildStepError
from pyboinc_build.platform_data import REPO_ROOT

SPEC = Path(__file__).with_name("worker.spec")
ENTRY_SCRIPT = REPO_ROOT / "pyboinc" / "__main__.py"
# Never wanted in the worker, even if something imports them lazily: the result codec
# imports numpy only for numpy values (a task that wants numpy gets it as a layer), and
# cloudpickle only for the master's trusted pickle codec. Whatever the build venv holds.
ALWAYS_EXCLUDED = (
    *("pymw", "setuptools", "pkg_resources", "pip", "pytest", "PyInstaller"),
    *("numpy", "cloudpickle"),
)


@dataclasses.dataclass(frozen=True)
class FreezeConfig:
    name: str
    onedir: bool
    hidden_imports: tuple[str, ...]
    excludes: tuple[str, ...]
    remove_rpaths: bool
    strip: bool
    # The generated `pyboinc._trusted_key` (see signing.py), added to the PYZ by the spec.
    trusted_key_module: str | None = None
    entry_script: str = str(ENTRY_SCRIPT)
    repo_root: str = str(REPO_ROOT)


# What the frozen worker imports before the stdlib zip is on sys.path: the runtime itself
# (the spec drops PyInstaller's runtime hooks that would import inspect, zipfile, pkgutil)
# and hashlib, which a signing worker loads only to check the zip (pyboinc.verify).
_BOOTSTRAP_PROBE = (
    "import sys, pyboinc.runtime, pyboinc.interpreter, runpy, traceback, hashlib;"
    "print(' '.join(sorted(sys.modules)))"
)


def bootstrap_modules() -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", _BOOTSTRAP_PROBE], capture_output=True, text=True, cwd=REPO_ROOT
    )
    if result.returncode != 0:
        raise BuildStepError(f"cannot list the worker's bootstrap modules: {result.stderr}")
    return set(result.stdout.split())


def zip_only_modules(supplied_by_zip, bootstrap: set[str]) -> list[str]:
    """The modules of `supplied_by_zip` the executable may leave out: those the worker does
    not import before the stdlib zip is on sys.path (nor any of their submodules)."""
    return [
        name
        for name in supplied_by_zip
        if not any(m == name or m.startswith(name + ".") for m in bootstrap)
    ]


def run_pyinstaller(config: FreezeConfig, dist_dir: Path, work_dir: Path) -> Path:
    """Freeze into `dist_dir`; return the executable (onefile) or the onedir launcher."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_path = work_dir / f"{config.name}{'.onedir' if config.onedir else ''}.json"
    config_path.write_text(json.dumps(dataclasses.asdict(config), indent=1))
    log_path = config_path.with_suffix(".log")
    command = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "WARN",
        "--distpath",
        str(dist_dir),
        "--workpath",
        str(work_dir / "pyinstaller"),
        str(SPEC),
    ]
    # A fixed hash seed makes PyInstaller's module ordering, hence its archives, reproducible.
    # Its cache of stripped binaries goes into the work dir: two builds sharing
    # ~/.cache/pyinstaller at once corrupt its index.
    env = {
        **os.environ,
        "PYBOINC_FREEZE_CONFIG": str(config_path),
        "PYTHONHASHSEED": "0",
        "PYINSTALLER_CONFIG_DIR": str(work_dir / "pyinstaller-cache"),
    }
    with open(log_path, "w") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log_path.read_text()[-1500:]
        raise BuildStepError(f"PyInstaller failed (log: {log_path}):\n{tail}")
    if config.onedir:
        return dist_dir / config.name / config.name
    return dist_dir / config.name
