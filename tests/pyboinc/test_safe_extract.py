"""safe_extract on hostile archives: a generated corpus of malformed zips.

Every malformed archive must end as one ContractError (a task exits 3 with one line, not a
traceback), and an archive refused part-way must leave the destination as it was.
"""

import io
import os
import struct
import zipfile

import pytest

from pyboinc import contract

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
# Byte offsets of fields in a local file header and in a central directory entry.
LOCAL_FIELDS = {"flags": 6, "method": 8, "crc": 14, "compressed": 18}
CENTRAL_FIELDS = {"flags": 8, "method": 10, "crc": 16, "compressed": 20, "offset": 42}
FIELD_FORMATS = {"flags": "<H", "method": "<H", "crc": "<I", "compressed": "<I", "offset": "<I"}
TEXT = b"the quick brown fox jumps over the lazy dog\n" * 200


def make_zip(entries, compression=zipfile.ZIP_STORED) -> bytearray:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return bytearray(buffer.getvalue())


def patch(data: bytearray, signature: bytes, fields: dict, index: int = 0, **values) -> None:
    """Set header fields of the `index`-th header starting with `signature`."""
    start = -1
    for _ in range(index + 1):
        start = data.index(signature, start + 1)
    for field, value in values.items():
        fmt = FIELD_FORMATS[field]
        old = struct.unpack_from(fmt, data, start + fields[field])[0]
        struct.pack_into(fmt, data, start + fields[field], value(old) if callable(value) else value)


def patch_both(data: bytearray, index: int = 0, **values) -> bytearray:
    patch(data, LOCAL, LOCAL_FIELDS, index, **values)
    patch(data, CENTRAL, CENTRAL_FIELDS, index, **values)
    return data


def flip_last_byte_of(data: bytearray, needle: bytes) -> bytearray:
    at = data.rindex(needle) + len(needle) - 1
    data[at] ^= 0x01
    return data


def three_members_the_third_corrupt() -> bytearray:
    data = make_zip([("one.txt", b"one" * 100), ("dir/two.txt", b"two" * 100), ("three", TEXT)])
    return flip_last_byte_of(data, TEXT[-40:])


def deflated_with_garbage_stream() -> bytearray:
    data = make_zip([("a.txt", TEXT)], zipfile.ZIP_DEFLATED)
    start = data.index(LOCAL) + 30 + len("a.txt")
    data[start : start + 8] = b"\xff" * 8
    return data


def cut_compressed_stream() -> bytearray:
    data = make_zip([("a.txt", TEXT)], zipfile.ZIP_DEFLATED)
    return patch_both(data, compressed=lambda size: size // 2)


def corrupt(compression) -> bytearray:
    data = make_zip([("a.txt", TEXT)], compression)
    start = data.index(LOCAL) + 30 + len("a.txt")
    data[start + 10 : start + 30] = bytes(range(20))
    return data


def names_differ() -> bytearray:
    data = make_zip([("a.txt", b"x")])
    at = data.index(b"a.txt")  # the local header's copy comes first
    data[at : at + 5] = b"b.txt"
    return data


def invalid_utf8_name() -> bytearray:
    data = make_zip([("a.txt", b"x")])
    data[:] = data.replace(b"a.txt", b"\xff.txt")
    patch(data, CENTRAL, CENTRAL_FIELDS, flags=0x800)
    return data


def bad_local_header_offset() -> bytearray:
    data = make_zip([("a.txt", b"x")])
    patch(data, CENTRAL, CENTRAL_FIELDS, offset=3)
    return data


def bad_central_directory() -> bytearray:
    data = make_zip([("a.txt", b"x"), ("b.txt", b"y")])
    at = data.index(CENTRAL, data.index(CENTRAL) + 1)
    data[at : at + 4] = b"PK\x09\x09"
    return data


def file_then_folder_of_the_same_name() -> bytearray:
    return make_zip([("a", b"file"), ("a/b", b"inside")])


def bomb_after_two_members() -> bytearray:
    return make_zip(
        [("one.txt", b"1"), ("two.txt", b"2"), ("zeros", b"\0" * 3_000_000)],
        zipfile.ZIP_DEFLATED,
    )


CORPUS = {
    "empty-file": lambda: bytearray(),
    "not-a-zip": lambda: bytearray(b"PK\x03\x04 definitely not a zip" * 10),
    "truncated": lambda: make_zip([("a.txt", TEXT), ("b.txt", TEXT)])[:3000],
    "bad-crc": lambda: flip_last_byte_of(make_zip([("a.txt", TEXT)]), TEXT[-40:]),
    "bad-crc-at-member-3": three_members_the_third_corrupt,
    "encrypted": lambda: patch_both(make_zip([("a.txt", TEXT)]), flags=0x1),
    "unknown-method": lambda: patch_both(make_zip([("a.txt", TEXT)]), method=99),
    "shrink-method": lambda: patch_both(make_zip([("a.txt", TEXT)]), method=1),
    "garbage-deflate-stream": deflated_with_garbage_stream,
    "cut-deflate-stream": cut_compressed_stream,
    "corrupt-bzip2": lambda: corrupt(zipfile.ZIP_BZIP2),
    "corrupt-lzma": lambda: corrupt(zipfile.ZIP_LZMA),
    "local-and-central-names-differ": names_differ,
    "invalid-utf8-name": invalid_utf8_name,
    "bad-local-header-offset": bad_local_header_offset,
    "bad-central-directory": bad_central_directory,
    "file-then-folder": file_then_folder_of_the_same_name,
    "bomb-after-two-members": bomb_after_two_members,
}


def listing(folder) -> dict:
    """Every path under `folder` (hidden ones too) with its bytes, or None for a folder."""
    tree = {}
    for path, folders, files in os.walk(folder):
        for name in folders:
            tree[os.path.relpath(os.path.join(path, name), folder)] = None
        for name in files:
            with open(os.path.join(path, name), "rb") as handle:
                tree[os.path.relpath(os.path.join(path, name), folder)] = handle.read()
    return tree


@pytest.fixture
def destination(tmp_path):
    """A slot that already holds files: they must come out of a refusal unchanged."""
    slot = tmp_path / "slot"
    (slot / "dir").mkdir(parents=True)
    (slot / "keep.txt").write_text("kept")
    (slot / "dir" / "two.txt").write_text("before")
    return slot


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_archives_are_one_contract_error_and_leave_nothing(tmp_path, destination, case):
    archive = tmp_path / f"{case}.zip"
    archive.write_bytes(bytes(CORPUS[case]()))
    before = listing(destination)
    with pytest.raises(contract.ContractError) as refused:
        contract.safe_extract(archive, destination, max_bytes=1_000_000)
    assert "\n" not in str(refused.value)
    assert listing(destination) == before


def test_the_corpus_is_valid_before_it_is_broken(tmp_path):
    """Each broken archive starts as one zipfile reads: the refusals are the damage's."""
    archive = tmp_path / "fine.zip"
    archive.write_bytes(bytes(make_zip([("a.txt", TEXT)], zipfile.ZIP_DEFLATED)))
    assert contract.safe_extract(archive, tmp_path / "out") == ["a.txt"]
    assert (tmp_path / "out" / "a.txt").read_bytes() == TEXT


def test_a_good_archive_merges_into_existing_folders(tmp_path, destination):
    archive = tmp_path / "good.zip"
    archive.write_bytes(bytes(make_zip([("dir/new.txt", b"new"), ("dir/two.txt", b"after")])))
    assert contract.safe_extract(archive, destination) == ["dir/new.txt", "dir/two.txt"]
    assert listing(destination) == {
        "dir": None,
        "keep.txt": b"kept",
        "dir/new.txt": b"new",
        "dir/two.txt": b"after",
    }


@pytest.mark.parametrize(
    ("entries", "reason"),
    [([("dir", b"a file")], "would replace a folder"), ([("keep.txt/x", b"")], "replace a file")],
)
def test_replacing_a_folder_by_a_file_or_back_is_refused(tmp_path, destination, entries, reason):
    archive = tmp_path / "conflict.zip"
    archive.write_bytes(bytes(make_zip([("fine.txt", b"fine"), *entries])))
    before = listing(destination)
    with pytest.raises(contract.UnsafeArchiveError, match=reason):
        contract.safe_extract(archive, destination)
    assert listing(destination) == before


def test_a_symlink_in_the_destination_is_no_way_out(tmp_path, destination):
    outside = tmp_path / "outside"
    outside.mkdir()
    (destination / "link").symlink_to(outside)
    archive = tmp_path / "through-link.zip"
    archive.write_bytes(bytes(make_zip([("link/planted.txt", b"x")])))
    with pytest.raises(contract.UnsafeArchiveError, match="escapes"):
        contract.safe_extract(archive, destination)
    assert list(outside.iterdir()) == []


def echo(*args):
    return args


def test_a_task_whose_data_zip_is_malformed_exits_3_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.zip").write_bytes(bytes(CORPUS["encrypted"]()))
    (tmp_path / "in").write_bytes(contract.encode_input((1,), data_zip="data.zip"))
    status = contract.task_main(echo, ["task.py", "in", "out"])
    assert status == contract.EXIT_BAD_INPUT == 3
    error = capsys.readouterr().err
    assert error.startswith("pymw task: cannot read input in: data.zip is not a readable zip")
    assert error.count("\n") == 1 and "encrypted" in error
    assert sorted(os.listdir(tmp_path)) == ["data.zip", "in"]
