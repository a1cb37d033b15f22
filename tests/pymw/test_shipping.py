"""Which modules workers can import themselves (sent by reference), and what that costs."""

import subprocess
import sys
import textwrap

from pymw import shipping


def _fake_distribution(folder, top: str) -> None:
    """An installed distribution as pip leaves it: the package and its metadata folder."""
    package = folder / "site" / top
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("def f():\n    return 1\n")
    info = folder / "site" / f"{top}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {top}\nVersion: 1.0\n")
    (info / "RECORD").write_text(f"{top}/__init__.py,,\n{info.name}/METADATA,,\n")


def _run(code: str, folder) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_an_installed_distribution_is_imported_by_reference(tmp_path):
    """A package that metadata names is importable by workers, wherever its folder is."""
    _fake_distribution(tmp_path, "fakedist_pkg")
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "site")!r})
        import fakedist_pkg
        from pymw import shipping
        print(shipping.worker_can_import("fakedist_pkg"))
    """
    assert _run(code, tmp_path) == ["True"]


def test_a_module_no_distribution_names_costs_no_metadata_scan(tmp_path):
    """A script's own helper module beside it is sent by source, and deciding so does not
    load importlib.metadata (megabytes of the master's memory)."""
    _fake_distribution(tmp_path, "fakedist_pkg")
    (tmp_path / "helpers_beside_script.py").write_text("def g():\n    return 2\n")
    code = f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "site")!r})
        import helpers_beside_script
        from pymw import shipping
        print(shipping.worker_can_import("helpers_beside_script"))
        print("importlib.metadata" in sys.modules)
    """
    assert _run(code, tmp_path) == ["False", "False"]


def test_builtins_and_the_standard_library_are_importable():
    assert shipping.worker_can_import("math") and shipping.worker_can_import("json.decoder")
    assert not shipping.worker_can_import("__main__")
