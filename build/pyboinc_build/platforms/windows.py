"""Windows: extensions are DLLs/*.pyd; a PyInstaller exe is already self-contained.

Runs only on a Windows host (CI); it cannot be exercised on the Linux development host.
"""

import sys
from pathlib import Path

from pyboinc_build.platform_data import PlatformData
from pyboinc_build.platforms import extension_names, require_native
from pyboinc_build.progress import StepProgress


def check_host(data: PlatformData) -> None:
    require_native(data)


def extension_modules(data: PlatformData) -> list[str]:
    return extension_names(Path(sys.base_prefix) / "DLLs", (".pyd",), data.excluded_extensions)


def remove_rpaths(portable: bool) -> bool:
    return False


def make_portable(exe: Path, out: Path, data: PlatformData, progress: StepProgress) -> Path:
    progress.note("windows: the PyInstaller executable needs only system DLLs")
    return exe
