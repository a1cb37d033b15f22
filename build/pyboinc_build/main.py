"""The build-workers command: options -> steps -> dist/pyboinc/<os>/ + manifest.json."""

import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from pyboinc_build import freeze, layers, manifest, options, platform_data, signing, stdlib_zip
from pyboinc_build.errors import BuildStepError, ConfigurationError, FatalError
from pyboinc_build.platforms import ALL_PLATFORM_MODULES
from pyboinc_build.progress import StepProgress

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


# The worker's cffi bindings: (the package whose build_binding compiles it, what it needs).
BINDINGS = {
    "BOINC": ("pyboinc.boinc_api", "libboinc-app-dev"),
    "libsodium": ("pyboinc.libsodium", "libsodium-dev"),  # Ed25519 checks of signed scripts
}


def compile_binding(name: str = "BOINC") -> Path:
    package, needs = BINDINGS[name]
    try:
        build_binding = platform_data.import_repo_module(f"{package}.build_binding")
        return build_binding.compile_in_place()
    except Exception as error:  # cffi raises VerificationError, distutils errors, ...
        raise BuildStepError(
            f"cannot compile the {name} binding ({error}); is {needs} installed?"
        ) from error


def build(opts: options.BuildOptions) -> Path:
    data = platform_data.load(opts.os)
    module = ALL_PLATFORM_MODULES[opts.os]
    module.check_host(data)
    target = data.target_for()
    exe_name = data.executable_name(opts.app_version, target)
    zip_name = stdlib_zip.zip_name(opts.stdlib_version)
    out_dir = opts.out_dir / opts.os
    steps = 6 + opts.portable + opts.onedir + bool(opts.trusted_key) + bool(opts.packages)
    progress = StepProgress(total=steps)
    built_files = []

    with tempfile.TemporaryDirectory(prefix="pyboinc-build-") as scratch:
        staging = Path(scratch)
        if opts.packages:  # first: a misspelt package fails in seconds, not after the freeze
            built_files.append(build_layer(opts, target, staging, progress))

        with progress.step("compile the cffi BOINC binding"):
            progress.note(str(compile_binding()))
        with progress.step("compile the cffi libsodium binding (Ed25519 checks)"):
            progress.note(str(compile_binding("libsodium")))

        with progress.step(f"build the stdlib zip {zip_name}"):
            report = stdlib_zip.build(
                staging / zip_name,
                excluded_packages=data.excluded_packages,
                compression=opts.zip_compression,
            )
            progress.note(f"{report.modules} modules, {report.size / 1e6:.2f} MB")
            built_files.append(
                manifest.BuiltFile(
                    report.path, zip_name, "stdlib", opts.stdlib_version, "--stdlib-version"
                )
            )

        trusted_key_module = None
        if opts.trusted_key is not None:
            with progress.step("embed the trusted key: the worker will refuse unsigned scripts"):
                trusted_key_module = signing.write_trusted_key_module(
                    opts.trusted_key,
                    opts.work_dir,
                    {b.file: b.path for b in built_files if b.role in ("stdlib", "layer")},
                    stdlib_zip=zip_name,
                )
                progress.note(f"{opts.trusted_key.hex()[:16]}... in {trusted_key_module}")

        extensions = module.extension_modules(data)
        if opts.with_openssl:
            extensions = sorted({*extensions, *data.openssl_extensions})
        # Excluded by name too, or PyInstaller collects them for what imports them
        # (hashlib imports _hashlib, the CJK encodings their codecs).
        every_extension = module.extension_modules(replace(data, excluded_extensions=()))
        left_out = [name for name in every_extension if name not in extensions]
        zip_only = freeze.zip_only_modules(data.supplied_by_zip, freeze.bootstrap_modules())
        config = freeze.FreezeConfig(
            name=exe_name,
            # The launcher carries PyInstaller's onedir tree (platforms/linux.py).
            onedir=bool(opts.portable and data.portable_tool == "launcher"),
            hidden_imports=(*data.hidden_imports, "pyboinc.boinc_api._boinc_cffi", *extensions),
            excludes=(*data.excluded_packages, *zip_only, *left_out, *freeze.ALWAYS_EXCLUDED),
            remove_rpaths=module.remove_rpaths(opts.portable),
            strip=opts.os != "windows",
            trusted_key_module=str(trusted_key_module) if trusted_key_module else None,
        )
        with progress.step(
            f"freeze {exe_name} (PyInstaller onefile, {len(extensions)} C extensions)"
        ):
            exe = freeze.run_pyinstaller(config, staging / "onefile", opts.work_dir)
            progress.note(f"{exe.stat().st_size / 1e6:.2f} MB")

        if opts.portable:
            with progress.step(f"make it portable ({data.portable_tool or 'nothing to do'})"):
                portable_dir = staging / "portable"
                portable_dir.mkdir()
                exe = module.make_portable(exe, portable_dir / exe_name, data, progress)
        built_files.insert(
            0, manifest.BuiltFile(exe, exe_name, "executable", opts.app_version, "--app-version")
        )

        if opts.onedir:
            with progress.step("freeze the onedir variant (local runs)"):
                onedir_config = freeze.FreezeConfig(
                    **{**config.__dict__, "onedir": True, "remove_rpaths": False}
                )
                launcher = freeze.run_pyinstaller(onedir_config, staging / "onedir", opts.work_dir)
                onedir_name = f"{exe_name}.onedir"
                built_files.append(
                    manifest.BuiltFile(
                        launcher,
                        f"{onedir_name}/{exe_name}",
                        "executable-onedir",
                        opts.app_version,
                        "--app-version",
                    )
                )

        with progress.step("check that published files keep their bytes"):
            manifest.check_immutable(out_dir, built_files)

        with progress.step(f"install into {out_dir} and write manifest.json"):
            out_dir.mkdir(parents=True, exist_ok=True)
            entries = []
            for built in built_files:
                entries.append(_install(built, out_dir, target.boinc_platform))
            document = manifest.make_manifest(
                os_name=opts.os,
                platform=target.boinc_platform,
                legacy_platforms=target.legacy_platforms,
                app_version=opts.app_version,
                stdlib_version=opts.stdlib_version,
                python=PYTHON,
                portable=bool(opts.portable and data.portable_tool),
                signing_public_key=opts.signing_public_key,
                files=entries,
            )
            progress.note(str(manifest.write(out_dir, document)))
    progress.note(f"built in {progress.elapsed():.0f} s")
    return out_dir


def build_layer(opts, target, staging: Path, progress: StepProgress) -> manifest.BuiltFile:
    with progress.step(f"build the package layer for {' '.join(opts.packages)}"):
        report = layers.build(
            opts.packages,
            layer_version=opts.layer_version,
            boinc_platform=target.boinc_platform,
            wheel_platforms=target.wheel_platforms,
            staging=staging,
        )
        size = report.path.stat().st_size
        progress.note(f"{report.name}: {size / 1e6:.2f} MB (wheels {report.wheel_bytes / 1e6:.2f})")
    return manifest.BuiltFile(
        report.path, report.name, "layer", opts.layer_version, "--layer-version", report.packages
    )


def add_layer(opts: options.BuildOptions) -> Path:
    """`--layers-only`: build the package layer and add it to the worker already in --out.

    A layer is independent of the executable, so adding numpy needs no new freeze, except
    for a signing worker, which takes only the layers whose hashes it was built with.
    """
    data = platform_data.load(opts.os)
    target = data.target_for()
    out_dir = opts.out_dir / opts.os
    try:
        document = json.loads((out_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        raise ConfigurationError(
            f"--layers-only needs a built worker in {out_dir}; build one first"
        ) from None
    if document.get("signing_public_key"):
        raise ConfigurationError(
            "--layers-only cannot extend a signing worker: it takes only the layers it was "
            "built with; rebuild it with --with"
        )
    progress = StepProgress(total=3)
    with tempfile.TemporaryDirectory(prefix="pyboinc-build-") as scratch:
        built = build_layer(opts, target, Path(scratch), progress)
        with progress.step("check that published files keep their bytes"):
            manifest.check_immutable(out_dir, [built])
        with progress.step(f"install into {out_dir} and update manifest.json"):
            entry = _install(built, out_dir, target.boinc_platform)
            # One layer per worker: the new package set replaces the one before it.
            others = [e for e in document["files"] if e["role"] != "layer"]
            document["files"] = [*others, entry]
            progress.note(str(manifest.write(out_dir, document)))
    return out_dir


def _install(built: manifest.BuiltFile, out_dir: Path, platform: str) -> dict:
    if built.role == "executable-onedir":
        folder = out_dir / Path(built.file).parent
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(built.path.parent, folder, symlinks=True)
    else:
        shutil.copy2(built.path, out_dir / built.file)
    return manifest.file_entry(built, out_dir / built.file, platform)


def main(argv: list[str] | None = None) -> int:
    try:
        opts = options.parse(sys.argv[1:] if argv is None else argv)
        if opts.layers_only:
            add_layer(opts)
        else:
            build(opts)
    except FatalError as error:
        print(f"build-workers: {error}", file=sys.stderr)
        return error.code
    return 0
