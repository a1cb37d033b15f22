import sys

import pytest
from pyboinc_build import main, options, platform_data
from pyboinc_build.errors import ConfigurationError, NotSupportedError
from pyboinc_build.platforms import ALL_PLATFORM_MODULES


@pytest.mark.parametrize("os_name", ["linux", "windows", "macos"])
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
    assert set(ALL_PLATFORM_MODULES) == set(platform_data.DATA_DIRS)
    for module in ALL_PLATFORM_MODULES.values():
        for name in ("check_host", "extension_modules", "remove_rpaths", "make_portable"):
            assert callable(getattr(module, name))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks refusal on Linux")
@pytest.mark.parametrize("os_name", ["windows", "macos"])
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
