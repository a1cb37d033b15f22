"""Linux: lib-dynload extensions; portability through staticx."""

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from pyboinc_build.errors import BuildStepError
from pyboinc_build.platform_data import PlatformData
from pyboinc_build.platforms import extension_names, require_native
from pyboinc_build.progress import StepProgress


def check_host(data: PlatformData) -> None:
    require_native(data)


def extension_modules(data: PlatformData) -> list[str]:
    return extension_names(
        Path(sysconfig.get_config_var("DESTSHARED")), (".so",), data.excluded_extensions
    )


def remove_rpaths(portable: bool) -> bool:
    # A pyenv-built Python has RUNPATH on libpython and every lib-dynload module, and
    # staticx refuses libraries that carry one.
    return portable


def make_portable(exe: Path, out: Path, data: PlatformData, progress: StepProgress) -> Path:
    if importlib.util.find_spec("staticx") is None:
        raise BuildStepError("staticx is not installed (pip install staticx), or use --no-portable")
    for tool in ("patchelf", "ldd", "objcopy", "strip"):
        if shutil.which(tool) is None:
            raise BuildStepError(f"staticx needs {tool!r} on PATH (apt install patchelf binutils)")
    # --strip: strip the bundled libc and loader too. --no-compress: staticx's xz costs
    # about 400 ms of CPU on every start (12.7x `python -c pass` against 4.5x without);
    # BOINC sends the file gzip-compressed instead (<gzip/> in version.xml), which makes
    # the download only 0.45 MB larger (docs/pyboinc.md has the figures).
    command = [
        sys.executable,
        "-m",
        "pyboinc_build.reproducible_staticx",
        "--strip",
        "--no-compress",
        str(exe),
        str(out),
    ]
    build_dir = Path(__file__).resolve().parents[2]
    result = subprocess.run(command, capture_output=True, text=True, cwd=build_dir)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise BuildStepError(f"staticx failed ({result.returncode}): {output[-1500:]}")
    progress.note(f"staticx: {out.name} ({out.stat().st_size / 1e6:.2f} MB)")
    return out
