"""Per-OS data from `platforms/<dir>/platform.toml`, loaded into frozen dataclasses."""

import dataclasses
import importlib
import platform
import sys
import tomllib
from pathlib import Path
from types import ModuleType

from pyboinc_build.errors import ConfigurationError, NotSupportedError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: One folder per OS. Its name is the OS name everywhere: `--os`, dist/pyboinc/<os>/, the
#: manifest's "os", the platform module platforms/<os>.py, and what the master looks for.
PLATFORMS_DIR = REPO_ROOT / "platforms"
DATA_FILE = "platform.toml"


def os_names(platforms_dir: Path = PLATFORMS_DIR) -> tuple[str, ...]:
    """The OS names: the folders of platforms/ that hold a platform.toml."""
    return tuple(sorted(p.parent.name for p in platforms_dir.glob(f"*/{DATA_FILE}")))


def host_os(platforms_dir: Path = PLATFORMS_DIR) -> str:
    """The OS name of this host: the one whose `sys_platform` this Python reports."""
    for name in os_names(platforms_dir):
        if sys.platform.startswith(load(name, platforms_dir).sys_platform):
            return name
    raise NotSupportedError(
        f"no platforms/<os>/{DATA_FILE} for this host ({sys.platform}); "
        f"known: {', '.join(os_names(platforms_dir))}"
    )


def import_repo_module(name: str) -> ModuleType:
    """Import `name` (a `pyboinc` module) from this checkout, which is what gets frozen."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module(name)


@dataclasses.dataclass(frozen=True)
class Target:
    machines: tuple[str, ...]
    boinc_platform: str
    legacy_platforms: tuple[str, ...]
    wheel_platforms: tuple[str, ...] = ()  # wheel tags for package layers, best first


@dataclasses.dataclass(frozen=True)
class PlatformData:
    os: str
    sys_platform: str
    executable_suffix: str
    targets: tuple[Target, ...]
    excluded_packages: tuple[str, ...]
    excluded_extensions: tuple[str, ...]
    hidden_imports: tuple[str, ...]
    supplied_by_zip: tuple[str, ...]
    portable_tool: str
    openssl_extensions: tuple[str, ...] = ()  # frozen only with --with-openssl

    def target_for(self, machine: str | None = None) -> Target:
        machine = machine or platform.machine()
        for target in self.targets:
            if machine.lower() in (m.lower() for m in target.machines):
                return target
        known = ", ".join(m for t in self.targets for m in t.machines)
        raise NotSupportedError(f"no {self.os} BOINC platform for machine {machine!r} ({known})")

    def executable_name(self, app_version: str, target: Target) -> str:
        return f"pymw_{app_version}_{target.boinc_platform}{self.executable_suffix}"


def load(os_name: str, platforms_dir: Path = PLATFORMS_DIR) -> PlatformData:
    known = os_names(platforms_dir)
    if os_name not in known:
        raise ConfigurationError(f"unknown OS {os_name!r}; choose one of {', '.join(known)}")
    path = platforms_dir / os_name / DATA_FILE
    try:
        raw = tomllib.loads(path.read_text())
        if raw["os"] != os_name:
            raise ConfigurationError(
                f"{path} says os = {raw['os']!r}; it must be its folder's name, {os_name!r}"
            )
        freeze = raw["freeze"]
        return PlatformData(
            os=raw["os"],
            sys_platform=raw["sys_platform"],
            executable_suffix=raw["executable_suffix"],
            targets=tuple(
                Target(
                    tuple(t["machines"]),
                    t["boinc_platform"],
                    tuple(t["legacy_platforms"]),
                    tuple(t.get("wheel_platforms", ())),
                )
                for t in raw["targets"]
            ),
            excluded_packages=tuple(freeze["excluded_packages"]),
            excluded_extensions=tuple(freeze["excluded_extensions"]),
            hidden_imports=tuple(freeze["hidden_imports"]),
            supplied_by_zip=tuple(freeze.get("supplied_by_zip", ())),
            portable_tool=raw.get("portable", {}).get("tool", ""),
            openssl_extensions=tuple(freeze.get("openssl_extensions", ())),
        )
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"bad platform data {path}: {error!r}") from None
