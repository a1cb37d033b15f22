"""apple (macOS): lib-dynload extensions; portability from the interpreter's deployment target.

Runs only on a macOS host (CI); it cannot be exercised on the Linux development host.
"""

import sysconfig
from pathlib import Path

from pyboinc_build.platform_data import PlatformData
from pyboinc_build.platforms import lib_dynload_extensions, require_native
from pyboinc_build.progress import StepProgress


def check_host(data: PlatformData) -> None:
    require_native(data)


def extension_modules(data: PlatformData) -> list[str]:
    return lib_dynload_extensions(data)


def remove_rpaths(portable: bool) -> bool:
    return False


def make_portable(exe: Path, out: Path, data: PlatformData, progress: StepProgress) -> Path:
    target = sysconfig.get_config_var("MACOSX_DEPLOYMENT_TARGET")
    progress.note(f"apple: runs on macOS {target} and later (the interpreter's target)")
    return exe
