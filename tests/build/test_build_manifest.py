import json

import pytest
from pyboinc_build import manifest
from pyboinc_build.errors import ImmutableFileError


def built(tmp_path, name, content, role="executable"):
    path = tmp_path / "staging" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    return manifest.BuiltFile(path, name, role, "1.03", "--app-version")


def test_same_bytes_may_be_rebuilt(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pymw_1.03_x").write_bytes(b"same")
    manifest.check_immutable(tmp_path / "out", [built(tmp_path, "pymw_1.03_x", b"same")])


def test_changed_bytes_with_the_same_version_ask_for_a_bump(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "pymw_1.03_x").write_bytes(b"old")
    with pytest.raises(ImmutableFileError, match=r"bump the version \(--app-version, now 1.03\)"):
        manifest.check_immutable(tmp_path / "out", [built(tmp_path, "pymw_1.03_x", b"new")])


def test_manifest_has_the_agreed_shape(tmp_path):
    exe = built(tmp_path, "pymw_1.03_x86_64-pc-linux-gnu", b"exe")
    entry = manifest.file_entry(exe, exe.path, "x86_64-pc-linux-gnu")
    document = manifest.make_manifest(
        os_name="linux",
        platform="x86_64-pc-linux-gnu",
        legacy_platforms=("i686-pc-linux-gnu",),
        app_version="1.03",
        stdlib_version="1.00",
        python="3.11",
        portable=True,
        signing_public_key=None,
        files=[entry],
    )
    written = json.loads(manifest.write(tmp_path, document).read_text())
    assert list(written) == [
        "format",
        "os",
        "platform",
        "legacy_platforms",
        "app_version",
        "stdlib_version",
        "python",
        "portable",
        "signing_public_key",
        "files",
    ]
    assert written["format"] == "pymw-worker-manifest/1"
    assert list(written["files"][0]) == ["file", "role", "version", "platform", "size", "sha256"]
    assert written["files"][0]["size"] == 3
