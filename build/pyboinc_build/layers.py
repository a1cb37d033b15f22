"""Package layers: numpy, scipy, ... for the frozen worker, from manylinux wheels.

`--with numpy==2.2.6 --with scipy` (or `[tool.pyboinc] packages = [...]` in pyproject.toml)
makes ONE layer for the whole set: `pip download` fetches the wheels for the target
(binary only, this Python's ABI), and their importable contents are merged into one
reproducible zip named after the versions resolved for the packages asked for, e.g.
`1.00_numpy-2.2.6_scipy-1.17.1_cp311_x86_64-pc-linux-gnu.zip`. Like every BOINC file it
never changes under its name: other content needs a new `--layer-version`.

C extensions cannot be imported from a zip, so the worker unpacks a layer once per host
into a cache (`pyboinc.layers`); the zip is only the unit of transfer.
"""

import dataclasses
import os
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from pyboinc_build.errors import BuildStepError, ConfigurationError
from pyboinc_build.platform_data import import_repo_module
from pyboinc_build.stdlib_zip import FIXED_DATE

DEFAULT_LAYER_VERSION = "1.00"
# Parts of a wheel's `<dist>.data/` folder that are importable; scripts, headers and data
# files are not, and a task never runs them.
_IMPORTABLE_DATA = ("purelib", "platlib")


@dataclasses.dataclass(frozen=True)
class LayerReport:
    path: Path
    name: str
    packages: tuple[str, ...]  # what pip resolved, "numpy==2.2.6", sorted
    wheel_bytes: int  # the wheels' total size, the benchmark's peer


def check_specs(specs: list[str], source: str) -> tuple[str, ...]:
    """Each spec as a PyPI requirement (`numpy`, `numpy==2.2.6`, `scipy>=1.13`), or one line.

    URLs and paths are refused: a layer holds what PyPI serves under a name and version,
    which is what its file name records.
    """
    checked = []
    for spec in specs:
        if not isinstance(spec, str):
            raise ConfigurationError(f"{source}: {spec!r} is not a package name such as 'numpy'")
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            raise ConfigurationError(
                f"{source} {spec!r} is not a package requirement; write e.g. numpy or numpy==2.2.6"
            ) from None
        if requirement.url:
            raise ConfigurationError(
                f"{source} {spec!r} names a URL; layers take PyPI packages, e.g. numpy==2.2.6"
            )
        checked.append(str(requirement))
    return tuple(checked)


def pyproject_packages(path: Path | None = None) -> tuple[str, ...]:
    """`[tool.pyboinc] packages` of the project being built for (the pyproject.toml in the
    current directory), checked like `--with`; () when absent."""
    path = path or Path.cwd() / "pyproject.toml"
    try:
        table = tomllib.loads(path.read_text()).get("tool", {}).get("pyboinc", {})
    except FileNotFoundError:
        return ()
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"cannot read {path}: {error}") from None
    packages = table.get("packages", [])
    source = f"{path.name} [tool.pyboinc] packages"
    if not isinstance(packages, list):
        raise ConfigurationError(f'{source} must be a list such as ["numpy==2.2.6"]')
    return check_specs(packages, source)


def abi_tag(version_info=sys.version_info) -> str:
    return f"cp{version_info[0]}{version_info[1]}"


def layer_name(layer_version: str, specs, packages, boinc_platform: str) -> str:
    """Named after the resolved versions of the packages asked for; their dependencies
    are in the manifest (a name must stay short enough for every file system)."""
    asked = {canonicalize_name(Requirement(spec).name) for spec in specs}
    named = [p.replace("==", "-") for p in packages if p.partition("==")[0] in asked]
    return f"{layer_version}_{'_'.join(named)}_{abi_tag()}_{boinc_platform}.zip"


def download_wheels(specs, wheel_platforms, destination: Path) -> list[Path]:
    """`pip download` the wheels of `specs` and their dependencies for the target."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:"]
    for tag in wheel_platforms:
        command += ["--platform", tag]
    command += ["--python-version", version, "--implementation", "cp"]
    command += ["--abi", abi_tag(), "--abi", "abi3", "--abi", "none"]
    command += ["--dest", str(destination), *specs]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"pip exited with {result.returncode}"
        raise BuildStepError(f"cannot download wheels for {' '.join(specs)}: {reason}")
    return sorted(destination.glob("*.whl"))


def _importable(relative: str) -> str | None:
    """Where a wheel member goes in the layer, or None when a task cannot import it."""
    top, _, rest = relative.partition("/")
    if not top.endswith(".data"):
        return relative
    kind, _, inner = rest.partition("/")
    return inner if kind in _IMPORTABLE_DATA and inner else None


def write_layer(wheels: list[Path], out_path: Path, scratch: Path) -> None:
    """Merge the wheels' importable files into one zip: sorted, fixed dates, deflated."""
    contract = import_repo_module("pyboinc.contract")
    members: dict[str, Path] = {}
    for wheel in wheels:
        unpacked = scratch / wheel.name
        try:
            contract.safe_extract(wheel, unpacked)
        except contract.ContractError as error:
            raise BuildStepError(f"cannot unpack {wheel.name}: {error}") from None
        for path in unpacked.rglob("*"):
            target = _importable(path.relative_to(unpacked).as_posix())
            if path.is_file() and target is not None and "__pycache__" not in target:
                members.setdefault(target, path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_path, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, members[name].read_bytes(), compresslevel=9)


def build(
    specs, *, layer_version: str, boinc_platform: str, wheel_platforms, staging: Path
) -> LayerReport:
    """Download and merge `specs` into `staging/<layer name>`."""
    if not wheel_platforms:
        raise ConfigurationError(
            f"no wheel platform tags for {boinc_platform} in platforms/; layers need them"
        )
    with tempfile.TemporaryDirectory(prefix="pyboinc-layer-", dir=staging) as scratch:
        downloads = Path(scratch) / "wheels"
        wheels = download_wheels(specs, wheel_platforms, downloads)
        packages = []
        for wheel in wheels:
            name, version, _, _ = parse_wheel_filename(wheel.name)
            packages.append(f"{canonicalize_name(name)}=={version}")
        name = layer_name(layer_version, specs, sorted(packages), boinc_platform)
        path = staging / name
        write_layer(wheels, path, Path(scratch) / "unpacked")
        wheel_bytes = sum(os.path.getsize(wheel) for wheel in wheels)
    return LayerReport(path, name, tuple(sorted(packages)), wheel_bytes)
