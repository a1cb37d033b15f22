"""The worker contract: the safe codec, the envelopes, archives, soft links, the script."""

import os
import stat
import subprocess
import sys
import zipfile

import pytest

from pyboinc import contract


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(10**40),
        1.5,
        float("inf"),
        "text",
        b"\x00\x01",
        [1, [2]],
        (1, (2,)),
        {"a": 1},
        {1: "int key", (1, 2): "tuple key"},
        {1, 2},
        frozenset({"x"}),
        3 - 4j,
        (),
    ],
)
def test_codec_round_trips_plain_data(value):
    assert contract.decode(contract.encode(value)) == value
    assert type(contract.decode(contract.encode(value))) is type(value)


@pytest.mark.parametrize(
    "hostile",
    [
        b'{"$pickle": "gASVAAAA"}',  # unknown tag: never a way to run code
        b'{"$tuple": [1], "$dict": []}',  # two tags
        b'{"$dict": [[[1, 2], "list key"]]}',  # unhashable key
        b'{"$bytes": "not base64!"}',
        b"[" * 100_000 + b"]" * 100_000,  # nesting deep enough to blow the stack
        b"\xff\xfe garbage",
        b"9" * 5000,  # an integer too long to parse cheaply
        b'{"a": 1} {"$pickle": "gASVAAAA"}',  # a second value after the first
        b"[1]]",
    ],
)
def test_decode_refuses_hostile_input_with_contract_error(hostile):
    with pytest.raises(contract.ContractError):
        contract.decode(hostile)


def test_decode_reads_json_written_by_hand_with_whitespace_around_it():
    assert contract.decode(b' \n{"a": [1, 2]}\n') == {"a": [1, 2]}


def test_decode_refuses_oversized_input_before_parsing():
    with pytest.raises(contract.ContractError, match="over the 10 limit"):
        contract.decode(b'"' + b"x" * 20 + b'"', max_bytes=10)


def test_encode_names_the_type_that_cannot_travel():
    with pytest.raises(TypeError, match="cannot carry a function"):
        contract.encode([len.__call__, lambda: 1][1])


def test_output_envelope_round_trip_and_malformed_records():
    ok = contract.Outcome(True, {"x": (1, 2)}, "out", "err")
    decoded = contract.decode_output(contract.encode(ok.to_envelope()))
    assert (decoded.ok, decoded.value, decoded.stdout, decoded.stderr) == (
        True,
        {"x": (1, 2)},
        "out",
        "err",
    )
    with pytest.raises(contract.ContractError, match="not a PyMW task output"):
        contract.decode_output(contract.encode({"format": "other"}))
    bad_error = {"format": contract.OUTPUT_FORMAT, "ok": False, "error": {"type": 1}}
    with pytest.raises(contract.ContractError, match="malformed error record"):
        contract.decode_output(contract.encode(bad_error))


ENVELOPE_VALUES = [None, 7, "é", [1, (2, "x")], list(range(100)), [0.5] * 70, {"k": b"z" * 5000}]


@pytest.mark.parametrize("value", ENVELOPE_VALUES)
def test_envelopes_are_byte_for_byte_the_encoding_of_their_dicts(value):
    # Inputs of positional arguments and quiet outputs are written as text around their
    # one varying field: what travels must stay what encoding the whole dict makes.
    args_only = {"format": contract.INPUT_FORMAT, "args": (value, 1)}
    assert contract.encode_input((value, 1)) == contract.encode(args_only)
    assert contract.decode_input(contract.encode(args_only)) == ((value, 1), None)
    quiet = contract.Outcome(True, value)
    assert quiet.to_bytes() == contract.encode(quiet.to_envelope())
    decoded = contract.decode_output(contract.encode(quiet.to_envelope()))
    assert (decoded.ok, decoded.value, decoded.stdout, decoded.stderr) == (True, value, "", "")


def test_an_envelope_with_more_than_its_fixed_fields_is_read_whole():
    numbers = list(range(100))  # raw after the JSON: the whole read uses the buffer again
    envelope = {"format": contract.INPUT_FORMAT, "args": (numbers,), "data_zip": "data.zip"}
    assert contract.decode_input(contract.encode(envelope)) == ((numbers,), "data.zip")
    # A field repeated after the value: as JSON reads it, the last one counts.
    text = '{"format":"%s","ok":true,"stdout":"","stderr":"","value":1,"ok":false}'
    with pytest.raises(contract.ContractError, match="malformed error record"):
        contract.decode_output((text % contract.OUTPUT_FORMAT).encode())
    text = '{"format":"%s","args":[1]}'  # args that are no tuple
    with pytest.raises(contract.ContractError, match="malformed args"):
        contract.decode_input((text % contract.INPUT_FORMAT).encode())


def test_call_task_captures_streams_and_bounds_them():
    def noisy():
        print("x" * (contract.MAX_CAPTURED_CHARS * 2))
        print("warning", file=sys.stderr)
        return 5

    outcome = contract.call_task(noisy, ())
    assert outcome.ok and outcome.value == 5
    assert len(outcome.stdout) < contract.MAX_CAPTURED_CHARS + 100
    assert outcome.stdout.endswith("[... output cut by PyMW]\n")
    assert outcome.stderr == "warning\n"


def test_a_tasks_captured_stdout_behaves_as_a_text_stream():
    def uses_the_stream():
        import io

        stream = sys.stdout
        assert isinstance(stream, io.TextIOBase) and stream.writable() and not stream.isatty()
        with pytest.raises(TypeError):
            stream.write(b"bytes")  # as a real text stream refuses them
        with pytest.raises(io.UnsupportedOperation):
            stream.fileno()
        stream.writelines(["a", "b\n"])
        stream.flush()
        return stream.encoding

    outcome = contract.call_task(uses_the_stream, ())
    assert (outcome.ok, outcome.value, outcome.stdout) == (True, "utf-8", "ab\n"), outcome.traceback


def test_worker_command_follows_the_argument_order():
    plain = contract.worker_command(["python3"], "t.py", "in", "out")
    frozen = contract.worker_command(["./pymw_1.03_x"], "t.py", "in", "out", "1.00_python311.zip")
    assert plain == ["python3", "t.py", "in", "out"]
    assert frozen == ["./pymw_1.03_x", "t.py", "1.00_python311.zip", "in", "out"]
    parsed = contract.parse_worker_args(frozen[1:], with_stdlib_zip=True)
    assert (parsed.script, parsed.stdlib_zip, parsed.input, parsed.output) == (
        "t.py",
        "1.00_python311.zip",
        "in",
        "out",
    )
    with pytest.raises(contract.ContractError, match="expected <script> <input> <output>"):
        contract.parse_worker_args(["t.py"], with_stdlib_zip=False)


def test_soft_link_files_are_followed(tmp_path):
    target = tmp_path / "projects" / "real_input"
    target.parent.mkdir()
    target.write_text("data")
    link = tmp_path / "in"
    link.write_text(f"<soft_link>{target}</soft_link>")
    assert contract.resolve_logical_name(str(link)) == str(target)
    assert contract.resolve_logical_name(str(target)) == str(target)
    assert contract.resolve_logical_name("missing") == "missing"


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def test_safe_extract_unpacks_trees(tmp_path):
    archive = _zip(tmp_path / "ok.zip", [("dir/a.txt", "A"), ("b.txt", "B")])
    names = contract.safe_extract(archive, tmp_path / "out")
    assert sorted(names) == ["b.txt", "dir/a.txt"]
    assert (tmp_path / "out" / "dir" / "a.txt").read_text() == "A"


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "a/../../evil", "C:\\evil", "..\\x"])
def test_safe_extract_refuses_escaping_names(tmp_path, name):
    archive = _zip(tmp_path / "bad.zip", [(name, "x")])
    with pytest.raises(contract.UnsafeArchiveError, match="escapes"):
        contract.safe_extract(archive, tmp_path / "out")


def test_safe_extract_refuses_symlinks(tmp_path):
    link = zipfile.ZipInfo("link")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "link.zip", [(link, "/etc/passwd")])
    with pytest.raises(contract.UnsafeArchiveError, match="symlink"):
        contract.safe_extract(archive, tmp_path / "out")


def test_safe_extract_stops_decompression_bombs(tmp_path):
    archive = _zip(tmp_path / "bomb.zip", [("zeros", b"\0" * 5_000_000)])
    assert os.path.getsize(archive) < 50_000
    with pytest.raises(contract.UnsafeArchiveError, match="over 1000000 bytes"):
        contract.safe_extract(archive, tmp_path / "out", max_bytes=1_000_000)
    with pytest.raises(contract.UnsafeArchiveError, match="entries"):
        many = _zip(tmp_path / "many.zip", [(f"f{i}", "") for i in range(20)])
        contract.safe_extract(many, tmp_path / "out", max_members=10)


def test_generated_script_runs_without_pymw_installed(tmp_path):
    """The embedded contract copy lets a bare interpreter (-I -S: no site-packages) run it."""
    import tasks_for_tests as t

    from pymw.programs import program_from_function

    (tmp_path / "task.py").write_text(program_from_function(t.square).script)
    (tmp_path / "in").write_bytes(contract.encode_input((12,)))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-I", "-S", "task.py", "in", "out"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == contract.EXIT_OK, run.stderr
    assert contract.decode_output((tmp_path / "out").read_bytes()).value == 144


def run_divide_by_zero_script(slot):
    """Run the generated script of a task that raises ZeroDivisionError in `slot`."""
    import tasks_for_tests as t

    from pymw.programs import program_from_function

    (slot / "task.py").write_text(program_from_function(t.divide).script)
    (slot / "in").write_bytes(contract.encode_input((1, 0)))
    return subprocess.run(
        [sys.executable, "task.py", "in", "out"], cwd=slot, capture_output=True, text=True
    )


def test_failing_script_writes_error_output_and_exits_non_zero(tmp_path):
    run = run_divide_by_zero_script(tmp_path)
    assert run.returncode == contract.EXIT_TASK_FAILED
    assert "ZeroDivisionError" in run.stderr
    outcome = contract.decode_output((tmp_path / "out").read_bytes())
    assert outcome.error_type == "ZeroDivisionError"


def test_in_a_boinc_slot_a_task_error_is_uploaded_as_output(tmp_path):
    """BOINC drops outputs of results that exit non-zero; the traceback must still arrive."""
    (tmp_path / contract.BOINC_INIT_DATA).write_text("<app_init_data/>")
    run = run_divide_by_zero_script(tmp_path)
    assert run.returncode == contract.EXIT_OK
    assert "ZeroDivisionError" in run.stderr
    assert contract.decode_output((tmp_path / "out").read_bytes()).error_type == "ZeroDivisionError"
