"""Linux: lib-dynload extensions; portability through a static launcher with a payload.

The portable worker is one file, as BOINC wants an app version's main program:

    build/launcher/pyboinc_launcher.c (gcc -static)  +  payload tar  +  trailer

The payload is PyInstaller's onedir tree plus the glibc it was linked against (loader
included), so it runs on hosts with an older glibc or none. The launcher unpacks it once
per host into `pyboinc-cache/<key>/` beside itself and execs into it on every start
(docs/pyboinc.md, "Start-up"). Each step here is deterministic, so two builds give the
same bytes.
"""

import hashlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

from pyboinc_build.errors import BuildStepError
from pyboinc_build.platform_data import REPO_ROOT, PlatformData
from pyboinc_build.platforms import lib_dynload_extensions, require_native
from pyboinc_build.progress import StepProgress

LAUNCHER_SOURCE = REPO_ROOT / "build" / "launcher" / "pyboinc_launcher.c"
# Inside the payload (also compiled into the launcher, -DPROGRAM / -DLOADER):
PROGRAM = "pymw-worker"  # PyInstaller's onedir program; sys.executable in the worker
GLIBC_DIR = "glibc"  # the C library the tree was built against, found through DT_RPATH
LOADER = f"{GLIBC_DIR}/ld.so"
RPATH = f"$ORIGIN/{GLIBC_DIR}:$ORIGIN/_internal"
# The launcher writes the absolute path of the unpacked LOADER over this placeholder.
INTERPRETER_PLACEHOLDER = "/" + "_" * 511
MAGIC = b"PYBOINC-PAYLOAD\1"
KEY_LENGTH = 32  # hex digits of the payload's sha256 that name its cache entry
TOOLS = ("gcc", "patchelf", "ldd", "strip")


def check_host(data: PlatformData) -> None:
    require_native(data)


def extension_modules(data: PlatformData) -> list[str]:
    return lib_dynload_extensions(data)


def remove_rpaths(portable: bool) -> bool:
    # A pyenv-built Python has RUNPATH on libpython and every lib-dynload module, which
    # would make the loader skip the program's DT_RPATH (and so the bundled glibc).
    return portable


def _run(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise BuildStepError(f"{command[0]} failed ({result.returncode}): {output[-800:]}")
    return result.stdout


def _elf_files(tree: Path) -> list[Path]:
    found = []
    for path in sorted(tree.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    found.append(path)
    return found


def system_libraries(tree: Path) -> dict[str, Path]:
    """The libraries (by soname) the tree's ELF files need that PyInstaller left out:
    glibc's own (libc, libm, libpthread, ...), which it never bundles."""
    bundled = {path.name for path in tree.rglob("*")}
    needed: dict[str, Path] = {}
    for elf in _elf_files(tree):
        result = subprocess.run(["ldd", str(elf)], capture_output=True, text=True)
        for line in result.stdout.splitlines():
            name, _, rest = line.strip().partition(" => ")
            path = rest.split(" (")[0].strip()
            if rest and path.startswith("/") and name not in bundled:
                needed[name] = Path(path)
    return needed


def bundle_glibc(tree: Path, program: Path) -> list[str]:
    """Copy glibc and its loader into the tree; point the program at them."""
    glibc = tree / GLIBC_DIR
    glibc.mkdir()
    libraries = system_libraries(tree)
    interpreter = Path(_run(["patchelf", "--print-interpreter", str(program)]).strip())
    for name, source in sorted({**libraries, "ld.so": interpreter}.items()):
        copy = glibc / name
        shutil.copyfile(source.resolve(), copy)
        copy.chmod(0o755)
        _run(["strip", "--strip-unneeded", str(copy)])
    _run(["patchelf", "--set-interpreter", INTERPRETER_PLACEHOLDER, str(program)])
    _run(["patchelf", "--force-rpath", "--set-rpath", RPATH, str(program)])
    return sorted(libraries)


def payload_tar(tree: Path) -> bytes:
    """The tree as an uncompressed ustar archive with fixed metadata (reproducible).
    Uncompressed: BOINC sends the file gzipped, and unpacking needs no zlib."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for path in [tree, *sorted(tree.rglob("*"))][1:]:
            info = archive.gettarinfo(str(path), arcname=path.relative_to(tree).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644
            if info.isfile():
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
            else:
                archive.addfile(info)
    return buffer.getvalue()


def compile_launcher(out: Path) -> Path:
    defines = [f'-DPROGRAM="{PROGRAM}"', f'-DLOADER="{LOADER}"']
    flags = ["-static", "-Os", "-s", "-Wall", "-Wextra", "-Werror", "-Wl,--build-id=none"]
    _run(["gcc", *flags, *defines, "-o", str(out), str(LAUNCHER_SOURCE)])
    return out


def join_launcher(launcher: bytes, payload: bytes) -> bytes:
    key = hashlib.sha256(payload).hexdigest()[:KEY_LENGTH].encode()
    trailer = MAGIC + struct.pack("<QQ", len(launcher), len(payload)) + key
    return launcher + payload + trailer


def make_portable(exe: Path, out: Path, data: PlatformData, progress: StepProgress) -> Path:
    """`exe` is the onedir program; `out` becomes the launcher with the tree as payload."""
    for tool in TOOLS:
        if shutil.which(tool) is None:
            raise BuildStepError(
                f"the portable worker needs {tool!r} on PATH (apt install gcc libc6-dev "
                "patchelf binutils), or use --no-portable"
            )
    tree = exe.parent
    program = exe.rename(tree / PROGRAM)
    libraries = bundle_glibc(tree, program)
    progress.note(f"bundled {', '.join(libraries)} and the loader")
    launcher = compile_launcher(out.with_name("launcher"))
    out.write_bytes(join_launcher(launcher.read_bytes(), payload_tar(tree)))
    out.chmod(0o755)
    launcher.unlink()
    progress.note(f"launcher + payload: {out.name} ({out.stat().st_size / 1e6:.2f} MB)")
    return out
