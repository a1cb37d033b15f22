"""Package layers at build time: the options, pyproject's list, and the zip made of wheels.

The real download (numpy's manylinux wheel from PyPI) is in the slow tests
(tests/conftest.py's `pyboinc_numpy_dist`, used by tests/build/test_layer_build.py).
"""

import json
import zipfile

import pytest
from pyboinc_build import layers, main, options
from pyboinc_build.errors import ConfigurationError

PLATFORM = "x86_64-pc-linux-gnu"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--with", "numpy=2"], "--with 'numpy=2' is not a package requirement"),
        (["--with", ""], "--with '' is not a package requirement"),
        (["--with", "numpy @ https://example.org/numpy.whl"], "names a URL"),
        (["--with", "numpy", "--layer-version", "1"], "--layer-version must look like"),
        (["--layers-only"], "--layers-only needs packages"),
    ],
)
def test_bad_layer_options_are_one_line_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "dist"
    assert main.main(["--out", str(out), "--work-dir", str(tmp_path / "work"), *args]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("build-workers: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not out.exists() and not (tmp_path / "work").exists()


def test_with_is_repeatable_and_keeps_the_specs(tmp_path):
    opts = options.parse(["--with", "numpy==2.2.6", "--with", "scipy>=1.13"])
    assert opts.packages == ("numpy==2.2.6", "scipy>=1.13")


def test_pyproject_lists_the_packages_when_no_with_is_given(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.pyboinc]\npackages = ["numpy==2.2.6"]\n')
    monkeypatch.chdir(tmp_path)
    assert options.parse([]).packages == ("numpy==2.2.6",)
    assert options.parse(["--with", "scipy"]).packages == ("scipy",)  # --with wins


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('packages = "numpy"', "must be a list"),
        ("packages = [2]", "2 is not a package name"),
        ('packages = ["numpy=="]', "'numpy==' is not a package requirement"),
    ],
)
def test_a_bad_pyproject_list_is_one_line(tmp_path, monkeypatch, table, message):
    (tmp_path / "pyproject.toml").write_text(f"[tool.pyboinc]\n{table}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"pyproject\.toml") as raised:
        options.parse([])
    assert message in str(raised.value)


def test_layers_only_refuses_a_signing_worker_before_downloading(tmp_path, capsys):
    os_dir = tmp_path / "dist" / "linux"
    os_dir.mkdir(parents=True)
    manifest = {"format": "pymw-worker-manifest/1", "files": [], "signing_public_key": "KEY"}
    (os_dir / "manifest.json").write_text(json.dumps(manifest))
    args = ["--out", str(tmp_path / "dist"), "--layers-only", "--with", "numpy"]
    assert main.main(args) == 2
    assert "cannot extend a signing worker" in capsys.readouterr().err
    assert sorted(p.name for p in os_dir.iterdir()) == ["manifest.json"]


def test_layers_only_needs_a_built_worker(tmp_path, capsys):
    args = ["--out", str(tmp_path / "dist"), "--layers-only", "--with", "numpy"]
    assert main.main(args) == 2
    assert "--layers-only needs a built worker in" in capsys.readouterr().err


def fake_wheel(path, name, version, members):
    wheel = path / f"{name}-{version}-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
        archive.writestr(f"{name}-{version}.dist-info/METADATA", f"Name: {name}\n")
    return wheel


def test_the_layer_merges_what_tasks_can_import_and_is_reproducible(tmp_path):
    wheels = [
        fake_wheel(
            tmp_path,
            "alpha",
            "1.0",
            {
                "alpha/__init__.py": "A = 1\n",
                "alpha/_core.so": b"\x7fELF",
                "alpha/__pycache__/x.cpython-311.pyc": b"stale",
                "alpha-1.0.data/scripts/alpha-cli": "#!/bin/sh\n",
                "alpha-1.0.data/headers/alpha.h": "",
            },
        ),
        fake_wheel(
            tmp_path,
            "beta",
            "2.0",
            {"beta.py": "B = 2\n", "beta-2.0.data/platlib/beta_ext.py": "C = 3\n"},
        ),
    ]
    first, second = tmp_path / "one.zip", tmp_path / "two.zip"
    layers.write_layer(wheels, first, tmp_path / "scratch1")
    layers.write_layer(list(reversed(wheels)), second, tmp_path / "scratch2")
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        names = archive.namelist()
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    assert names == sorted(names)
    assert set(names) == {
        "alpha-1.0.dist-info/METADATA",
        "alpha/__init__.py",
        "alpha/_core.so",
        "beta-2.0.dist-info/METADATA",
        "beta.py",
        "beta_ext.py",
    }


def test_the_layer_is_named_after_the_versions_resolved_for_what_was_asked():
    resolved = ["numpy==2.2.6", "python-dateutil==2.9.0", "scipy==1.17.1"]
    name = layers.layer_name("1.00", ["NumPy>=2", "scipy"], resolved, PLATFORM)
    assert name == f"1.00_numpy-2.2.6_scipy-1.17.1_cp311_{PLATFORM}.zip"
