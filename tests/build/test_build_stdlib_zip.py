import subprocess
import sys
import zipfile

from pyboinc_build import stdlib_zip


def make_source_tree(root):
    (root / "json").mkdir(parents=True)
    (root / "json" / "__init__.py").write_text("VALUE = 42\n")
    (root / "json" / "tests").mkdir()
    (root / "json" / "tests" / "test_x.py").write_text("x = 1\n")
    (root / "tkinter").mkdir()
    (root / "tkinter" / "__init__.py").write_text("y = 1\n")
    (root / "site-packages").mkdir()
    (root / "site-packages" / "other.py").write_text("z = 1\n")
    (root / "broken.py").write_text("def (:\n")
    (root / "plain.py").write_text("def f():\n    return 'plain'\n")


def test_two_builds_give_the_same_bytes(tmp_path):
    make_source_tree(tmp_path / "lib")
    first = stdlib_zip.build(
        tmp_path / "a.zip", excluded_packages=["tkinter"], source_root=tmp_path / "lib"
    )
    (tmp_path / "lib" / "plain.py").touch()  # a new mtime must not change the zip
    second = stdlib_zip.build(
        tmp_path / "b.zip", excluded_packages=["tkinter"], source_root=tmp_path / "lib"
    )
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert first.modules == second.modules == 2
    assert first.skipped == ("broken.py",)


def test_only_pycs_of_wanted_modules_stored_or_deflated(tmp_path):
    make_source_tree(tmp_path / "lib")
    for compression, kind in (("deflated", zipfile.ZIP_DEFLATED), ("stored", zipfile.ZIP_STORED)):
        path = tmp_path / f"{compression}.zip"
        stdlib_zip.build(
            path,
            excluded_packages=["tkinter"],
            compression=compression,
            source_root=tmp_path / "lib",
        )
        with zipfile.ZipFile(path) as archive:
            assert archive.namelist() == ["json/__init__.pyc", "plain.pyc"]
            assert {i.compress_type for i in archive.infolist()} == {kind}
            assert {i.date_time for i in archive.infolist()} == {stdlib_zip.FIXED_DATE}


def test_zipimport_loads_the_unchecked_pycs(tmp_path):
    make_source_tree(tmp_path / "lib")
    path = tmp_path / "lib.zip"
    stdlib_zip.build(path, excluded_packages=[], source_root=tmp_path / "lib")
    code = f"import sys; sys.path.insert(0, {str(path)!r}); import plain; print(plain.f())"
    result = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "plain", result.stderr


def test_zip_name_carries_the_version_and_python():
    assert stdlib_zip.zip_name("1.00", (3, 11)) == "1.00_python311.zip"


def test_the_real_stdlib_selection_leaves_out_tests_and_tk():
    names = {
        p.as_posix()
        for p in stdlib_zip.iter_sources(
            stdlib_zip.stdlib_dir(),
            ["test", "idlelib", "tkinter", "ensurepip", "lib2to3", "turtledemo"],
        )
    }
    assert "json/__init__.py" in names and "email/mime/text.py" in names
    assert not any(n.startswith(("test/", "idlelib/", "tkinter/", "lib2to3/")) for n in names)
    assert not any("/test/" in n or "/tests/" in n for n in names)
