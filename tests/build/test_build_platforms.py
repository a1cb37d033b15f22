import sys
from pathlib import Path

import pytest
from pyboinc_build import main, manifest, options, platform_data
from pyboinc_build.errors import ConfigurationError, NotSupportedError
from pyboinc_build.platforms import ALL_PLATFORM_MODULES


def test_the_os_names_are_the_folders_of_platforms():
    assert platform_data.os_names() == ("apple", "linux", "windows")


@pytest.mark.parametrize("os_name", platform_data.os_names())
def test_platform_data_loads(os_name):
    data = platform_data.load(os_name)
    assert data.os == os_name
    assert data.targets and all(t.boinc_platform for t in data.targets)
    assert "tkinter" in data.excluded_packages
    assert "_cffi_backend" in data.hidden_imports


def test_names_and_legacy_platforms():
    linux = platform_data.load("linux")
    x86 = linux.target_for("x86_64")
    assert linux.executable_name("1.03", x86) == "pymw_1.03_x86_64-pc-linux-gnu"
    assert linux.target_for("aarch64").boinc_platform == "aarch64-unknown-linux-gnu"
    # Legacy 32-bit names go to 32-bit builds only: a 64-bit worker sent to a 32-bit host
    # cannot run there.
    assert linux.target_for("i686").boinc_platform == "i686-pc-linux-gnu"
    assert linux.target_for("armv7l").boinc_platform == "arm-unknown-linux-gnueabihf"
    assert not x86.legacy_platforms
    windows = platform_data.load("windows")
    target = windows.target_for("AMD64")
    assert windows.executable_name("1.03", target) == "pymw_1.03_windows_x86_64.exe"
    assert windows.target_for("x86").boinc_platform == "windows_intelx86"
    assert not target.legacy_platforms
    with pytest.raises(NotSupportedError):
        linux.target_for("sparc64")


def test_every_os_has_a_platform_module():
    assert set(ALL_PLATFORM_MODULES) == set(platform_data.os_names())
    for os_name, module in ALL_PLATFORM_MODULES.items():
        assert Path(module.__file__).stem == os_name
        for name in ("check_host", "extension_modules", "remove_rpaths", "make_portable"):
            assert callable(getattr(module, name))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks refusal on Linux")
@pytest.mark.parametrize("os_name", ["windows", "apple"])
def test_another_os_is_refused_with_a_clear_error(os_name, capsys, tmp_path):
    code = main.main(["--os", os_name, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"build-workers: cannot build the {os_name} worker")
    assert "cross-compiler" in err and "Traceback" not in err
    assert err.count("\n") == 1


def test_option_errors_are_one_line_with_a_hint(capsys):
    with pytest.raises(ConfigurationError, match="did you mean --onedir"):
        options.parse(["--onedri"])
    with pytest.raises(ConfigurationError, match=r"--app-version must look like 1\.03"):
        options.parse(["--app-version", "1.3"])
    assert main.main(["--stdlib-version", "x"]) == 2
    assert capsys.readouterr().err.startswith("build-workers: --stdlib-version")


def test_defaults():
    opts = options.parse([])
    assert (opts.app_version, opts.stdlib_version, opts.portable, opts.onedir) == (
        "1.03",
        "1.00",
        True,
        False,
    )
    assert opts.out_dir.parts[-2:] == ("dist", "pyboinc")


def test_platform_data_must_name_its_own_folder(tmp_path):
    (tmp_path / "apple").mkdir()
    source = platform_data.PLATFORMS_DIR / "apple" / platform_data.DATA_FILE
    text = source.read_text().replace('os = "apple"', 'os = "macos"')
    (tmp_path / "apple" / platform_data.DATA_FILE).write_text(text)
    with pytest.raises(ConfigurationError, match=r"os = 'macos'; it must be .* 'apple'"):
        platform_data.load("apple", tmp_path)


@pytest.mark.parametrize("os_name", platform_data.os_names())
def test_the_master_finds_the_worker_just_built_for_each_os(os_name, tmp_path, monkeypatch):
    """The build's OS name (--os, dist/pyboinc/<os>/, the manifest) is the one the master
    looks for on that OS, and HTCondor gets that OS's OpSys (an apple worker was LINUX)."""
    from pymw.interfaces import condor
    from pymw.worker_app import find_worker_app

    data = platform_data.load(os_name)
    target = data.targets[0]
    monkeypatch.setattr(sys, "platform", data.sys_platform)
    monkeypatch.setattr("platform.machine", lambda: target.machines[0])
    assert options.host_os() == os_name
    opts = options.parse(["--os", os_name, "--out", str(tmp_path / "dist")])
    built_dir = opts.out_dir / opts.os  # where main.build installs
    built_dir.mkdir(parents=True)
    entries = []
    for name, role, version in (
        (data.executable_name(opts.app_version, target), "executable", opts.app_version),
        ("1.00_python311.zip", "stdlib", opts.stdlib_version),
    ):
        (built_dir / name).write_bytes(b"built")
        built = manifest.BuiltFile(built_dir / name, name, role, version, "--app-version")
        entries.append(manifest.file_entry(built, built_dir / name, target.boinc_platform))
    document = manifest.make_manifest(
        os_name=opts.os,
        platform=target.boinc_platform,
        legacy_platforms=(),
        app_version=opts.app_version,
        stdlib_version=opts.stdlib_version,
        python="3.11",
        portable=False,
        signing_public_key=None,
        files=entries,
    )
    manifest.write(built_dir, document)
    app = find_worker_app(tmp_path / "dist", "1.00_python311.zip")
    assert app.executable == built_dir / entries[0]["file"]
    opsys = {"linux": "LINUX", "windows": "WINDOWS", "apple": "OSX"}[os_name]
    assert f'TARGET.OpSys == "{opsys}"' in condor._app_requirements(app)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "{file}"], "--out: {file} is a file; give a folder"),
        (["--out", "{file}/sub"], "--out: {file} is a file; give a folder"),
        (["--work-dir", "{file}"], "--work-dir: {file} is a file; give a folder"),
        (["--out", "/sys/pymw-out"], "--out: cannot write to /sys (Permission denied)"),
        (["--work-dir", "/sys/pymw-work"], "--work-dir: cannot write to /sys"),
        (["--os", "macos"], "argument --os: invalid choice: 'macos'"),
        (["--zip-compression", "lzma"], "argument --zip-compression: invalid choice"),
        (["--signing-public-key", "{file}"], "--signing-public-key {file} is not an Ed25519"),
        (["--stdlib-version", "1.0"], "--stdlib-version must look like 1.03"),
        (["--portable=yes"], "argument --portable/--no-portable: ignored explicit argument"),
        (["--onedir", "--out"], "argument --out: expected one argument"),
    ],
)
def test_a_bad_option_is_one_line_exit_2_before_any_work(argv, message, tmp_path, capsys):
    """A bad --out used to fail with a traceback after two build steps."""
    if any(arg.startswith("/sys/") for arg in argv) and not sys.platform.startswith("linux"):
        pytest.skip("needs Linux's /sys, which even root cannot write")
    in_the_way = tmp_path / "a_file"
    in_the_way.write_text("not a folder")
    argv = [arg.format(file=in_the_way) for arg in argv]
    assert main.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("build-workers: " + message.format(file=in_the_way))
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert captured.out == ""  # no build step was started
    assert in_the_way.read_text() == "not a folder"
