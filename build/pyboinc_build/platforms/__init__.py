"""One small module per OS behind one Protocol (cibuildwheel's layout).

What differs between OSes as data lives in `platforms/<os>/platform.toml`; what differs as
code (where the stdlib C extensions are, how to make the executable portable) lives here.
Nothing else in the build branches on the OS.
"""

import fnmatch
import sys
from pathlib import Path
from typing import Final, Protocol

from pyboinc_build.errors import NotSupportedError
from pyboinc_build.platform_data import PlatformData
from pyboinc_build.progress import StepProgress


class PlatformModule(Protocol):
    def check_host(self, data: PlatformData) -> None:
        """Raise NotSupportedError unless this host can build `data.os` workers."""

    def extension_modules(self, data: PlatformData) -> list[str]:
        """Names of the stdlib C extension modules to put into the executable."""

    def remove_rpaths(self, portable: bool) -> bool:
        """Whether collected libraries must lose their RPATH (RUNPATH hides bundled glibc)."""

    def make_portable(
        self, exe: Path, out: Path, data: PlatformData, progress: StepProgress
    ) -> Path:
        """Make `exe` run on older hosts of this OS; return the resulting file."""


def require_native(data: PlatformData) -> None:
    if not sys.platform.startswith(data.sys_platform):
        raise NotSupportedError(
            f"cannot build the {data.os} worker on {sys.platform}: PyInstaller is not a "
            f"cross-compiler; build it on {data.os} (the CI workflow "
            ".github/workflows/build-workers.yml does this)"
        )


def extension_names(directory: Path, suffixes: tuple[str, ...], excluded) -> list[str]:
    names = set()
    for path in directory.iterdir():
        if path.name.endswith(suffixes):
            names.add(path.name.split(".", 1)[0])
    return sorted(n for n in names if not any(fnmatch.fnmatch(n, p) for p in excluded))


def lib_dynload_extensions(data: PlatformData) -> list[str]:
    """The stdlib extension modules of a Unix interpreter (its lib-dynload folder)."""
    import sysconfig

    folder = Path(sysconfig.get_config_var("DESTSHARED"))
    return extension_names(folder, (".so",), data.excluded_extensions)


def _registry() -> dict[str, PlatformModule]:
    # Keyed by OS name: each module is named after its platforms/<os>/ folder.
    from pyboinc_build.platforms import apple, linux, windows

    return {"apple": apple, "linux": linux, "windows": windows}


ALL_PLATFORM_MODULES: Final[dict[str, PlatformModule]] = _registry()
