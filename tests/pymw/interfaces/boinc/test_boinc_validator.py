"""bin/pymw_validator as BOINC's script_validator runs it: the server's bare python3."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import pickle
import subprocess
import typing
from pathlib import Path

import numpy
import pytest

from pyboinc import contract
from pymw.interfaces.boinc import registry
from pymw.interfaces.boinc.constants import VALIDATOR_SCRIPT
from pymw.interfaces.boinc.server_scripts import install_server_scripts

# The server's interpreter, with no PyMW installed: the script must live on its bin/ copies.
SERVER_PYTHON = "/usr/bin/python3"
BATCH = 1700000000
MATCH, DIFFER, TRANSIENT = 0, 1, 3


class Phase(enum.Enum):
    SOLID = 1
    LIQUID = 2


class Point(typing.NamedTuple):
    x: float
    y: float


@dataclasses.dataclass
class Fit:
    slope: float
    where: Point
    phase: Phase


# The program's classes as the master ships them: the workers encode these records by key.
PROGRAM = {contract.class_key(kind): kind for kind in (Phase, Point, Fit)}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "bin").mkdir(parents=True)
    (root / "upload").mkdir()
    install_server_scripts(root)
    return root


def register(project: Path, task_dir: Path, **policy) -> None:
    task_dir.mkdir(exist_ok=True)
    entry = {"task_dir": str(task_dir), "compare": "exact", "max_nbytes": 65536, **policy}
    path = Path(registry.entry_path(str(project), BATCH))
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(entry))


def output(project: Path, replica: int, data: bytes, batch: int = BATCH) -> Path:
    """An uploaded output file, named as BOINC names it: <wu>_<replica>_r<random>_0."""
    path = project / "upload" / f"pymw_{batch}_0123456789abcdef_{replica}_r{replica}42_0"
    path.write_bytes(data)
    return path


def value_output(value, stdout: str = "") -> bytes:
    return contract.encode(
        contract.Outcome(True, value, stdout=stdout).to_envelope(), classes=PROGRAM
    )


# Runs the script as its own __main__ with numpy unimportable, whether or not the server's
# python3 has it.
WITHOUT_NUMPY = (
    "import runpy, sys; sys.modules['numpy'] = None; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def validate(project: Path, *paths: Path, block_numpy: bool = False) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    python = [SERVER_PYTHON, "-c", WITHOUT_NUMPY] if block_numpy else [SERVER_PYTHON]
    return subprocess.run(
        [*python, str(project / "bin" / VALIDATOR_SCRIPT), *map(str, paths)],
        cwd=project / "bin",
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def compare(project: Path, first: bytes, second: bytes) -> int:
    return validate(project, output(project, 0, first), output(project, 1, second)).returncode


def test_exact_compare_is_on_decoded_values_not_bytes(project):
    # Captured stdout differs between hosts, and a set's order with the hash seed.
    words = {f"word{i}" for i in range(50)}
    first = value_output({"pi": 3.14, "words": words}, stdout="host A")
    second = value_output({"pi": 3.14, "words": set(sorted(words))}, stdout="host B")
    assert first != second
    assert compare(project, first, second) == MATCH
    assert compare(project, value_output([1, (2, 3.0)]), value_output([1, (2, 3.0000001)])) == (
        DIFFER
    )
    # Same value, other type: a host that returns 1.0 for 1 runs other code.
    assert compare(project, value_output(1), value_output(1.0)) == DIFFER
    assert compare(project, value_output(float("nan")), value_output(float("nan"))) == MATCH


def test_failed_tasks_agree_on_error_type_and_message_not_traceback(project):
    def failure(message: str, where: str) -> bytes:
        outcome = contract.Outcome(False, None, "", "", "ValueError", message, f"at {where}")
        return contract.encode(outcome.to_envelope())

    assert compare(project, failure("bad x", "slot 1"), failure("bad x", "slot 7")) == MATCH
    assert compare(project, failure("bad x", "slot 1"), failure("bad y", "slot 1")) == DIFFER
    assert compare(project, failure("bad x", "slot 1"), value_output("bad x")) == DIFFER


def test_fuzzy_batches_compare_floats_within_tolerance_also_nested(project, tmp_path):
    register(project, tmp_path / "tasks", compare="fuzzy", rtol=1e-6, atol=0.0)
    near = ({"a": [1.0, (2.0, 3 + 1j)]}, {"a": [1.0000001, (2.0000001, 3.0000001 + 1j)]})
    far = ({"a": [1.0, (2.0, 3.0)]}, {"a": [1.0, (2.0, 3.1)]})
    assert compare(project, value_output(near[0]), value_output(near[1])) == MATCH
    assert compare(project, value_output(far[0]), value_output(far[1])) == DIFFER
    # Structure and non-float values still compare exactly.
    assert compare(project, value_output({"a": 1}), value_output({"b": 1})) == DIFFER
    assert compare(project, value_output([1.0]), value_output([1.0, 1.0])) == DIFFER
    assert compare(project, value_output(10), value_output(11)) == DIFFER


def test_exact_batches_do_not_accept_what_fuzzy_would(project, tmp_path):
    first, second = value_output([1.0]), value_output([1.0000001])
    register(project, tmp_path / "tasks", compare="fuzzy", rtol=1e-6)
    assert compare(project, first, second) == MATCH
    register(project, tmp_path / "tasks")
    assert compare(project, first, second) == DIFFER


def test_undecodable_oversized_and_missing_outputs_are_invalid(project, tmp_path):
    register(project, tmp_path / "tasks", max_nbytes=1000)
    good = output(project, 0, value_output(1))
    assert validate(project, good).returncode == MATCH
    for replica, data in enumerate([b"", b"{not json", b'{"format": "other"}'], start=1):
        assert validate(project, output(project, replica, data)).returncode == DIFFER
        assert validate(project, good, output(project, replica, data)).returncode == DIFFER
    oversized = output(project, 5, value_output("x" * 2000))
    assert validate(project, oversized).returncode == DIFFER
    assert validate(project, good, project / "upload" / "gone").returncode == DIFFER
    log = (tmp_path / "tasks" / registry.VALIDATION_LOG).read_text()
    assert "rejected" in log and "max_nbytes 1000" in log


def test_a_pickled_output_is_never_unpickled(project, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = output(project, 0, pickle.dumps(Exploit()))
    assert validate(project, hostile).returncode == DIFFER
    assert validate(project, hostile, output(project, 1, value_output(1))).returncode == DIFFER
    assert not marker.exists()


def test_disagreements_are_recorded_in_the_batch_task_dir(project, tmp_path):
    task_dir = tmp_path / "tasks"
    register(project, task_dir)
    assert compare(project, value_output(1), value_output(2)) == DIFFER
    kind, wu_name, *files = (task_dir / registry.VALIDATION_LOG).read_text().split()
    assert (kind, wu_name) == ("disagreed", f"pymw_{BATCH}_0123456789abcdef")
    assert files == [f"{wu_name}_0_r042_0", f"{wu_name}_1_r142_0"]


def test_unregistered_batches_are_compared_exactly_and_logged_nowhere(project, tmp_path):
    """Remote batches have no registry entry on the server."""
    first, second = value_output(1.0), value_output(1.0 + 1e-12)
    assert compare(project, first, second) == DIFFER
    assert compare(project, first, first) == MATCH
    assert not list(tmp_path.rglob(registry.VALIDATION_LOG))


def test_an_output_it_cannot_read_now_is_a_transient_error(project):
    # A read error other than "no such file" (tests run as root, who reads any mode).
    unreadable = project / "upload" / f"pymw_{BATCH}_0123456789abcdef_0_0"
    unreadable.mkdir()
    assert validate(project, unreadable).returncode == TRANSIENT


def fit(slope=0.5, x=1.0, phase=Phase.SOLID) -> Fit:
    return Fit(slope, Point(x, 2.0), phase)


def test_program_records_and_numpy_arrays_agree_when_equal(project):
    """The server has neither the program's classes nor numpy: records and arrays compare
    as their class key, fields, dtype, shape and elements."""
    curve = numpy.linspace(0.0, 1.0, 1000)  # 8000 bytes: travels as a raw buffer
    honest = {"fit": fit(), "phases": {Phase.LIQUID}, "curve": curve, "peak": numpy.float32(3)}
    first, second = value_output(honest, stdout="host A"), value_output(honest, stdout="host B")
    assert compare(project, first, second) == MATCH
    differing = {
        "a field": {**honest, "fit": fit(slope=0.25)},
        "a nested record's field": {**honest, "fit": fit(x=1.5)},
        "an enum member": {**honest, "phases": {Phase.SOLID}},
        "an array element": {**honest, "curve": numpy.concatenate([curve[:-1], [2.0]])},
        "an array's dtype": {**honest, "curve": curve.astype(numpy.float32)},
        "an array's shape": {**honest, "curve": curve.reshape(10, 100)},
        "a scalar for an array": {**honest, "peak": numpy.array([3], numpy.float32)},
        "a plain value for a record": {**honest, "fit": (0.5, (1.0, 2.0), 1)},
    }
    for what, value in differing.items():
        assert compare(project, first, value_output(value)) == DIFFER, what


def test_records_of_another_class_with_the_same_fields_differ(project):
    def record(key: str) -> bytes:
        return value_output_json({"$namedtuple": [key, [1.0, 2.0]]})

    assert compare(project, record("m:Point"), record("m:Point")) == MATCH
    assert compare(project, record("m:Point"), record("m:Vector")) == DIFFER


def test_fuzzy_batches_accept_a_tiny_float_difference_in_arrays_and_records(project, tmp_path):
    near = [
        (numpy.array([[1.0, 2.0]]), numpy.array([[1.0000001, 2.0]])),
        (numpy.array([1.0], numpy.float32), numpy.array([1.0000001], numpy.float32)),
        (numpy.array([1 + 1j]), numpy.array([1 + 1.0000001j])),
        (numpy.float64(1.0), numpy.float64(1.0000001)),
        (fit(slope=1.0), fit(slope=1.0000001)),
        ([fit(x=1.0)], [fit(x=1.0000001)]),
    ]
    far = [
        (numpy.array([1.0, 2.0]), numpy.array([1.1, 2.0])),
        (numpy.array([1, 2]), numpy.array([1, 3])),  # integers compare exactly
        (numpy.array([b"ab"]), numpy.array([b"ac"])),  # other dtypes by their bytes
        (fit(slope=1.0), fit(slope=1.1)),
    ]
    register(project, tmp_path / "tasks", compare="fuzzy", rtol=1e-6, atol=0.0)
    for first, second in near:
        assert compare(project, value_output(first), value_output(second)) == MATCH, first
    for first, second in far:
        assert compare(project, value_output(first), value_output(second)) == DIFFER, first
    register(project, tmp_path / "tasks")  # exact: the tiny differences count
    for first, second in near:
        assert compare(project, value_output(first), value_output(second)) == DIFFER, first


def value_output_json(value) -> bytes:
    """An output envelope written as JSON text, for values no test process class makes."""
    envelope = {"format": contract.OUTPUT_FORMAT, "ok": True, "stdout": "", "stderr": ""}
    return json.dumps({**envelope, "value": value}).encode()


def test_the_validator_never_imports_numpy_nor_a_class_the_output_names(project, tmp_path):
    """Records name a real module beside the validator whose import and __init__ leave a
    mark; the server's python runs with numpy unimportable."""
    marker = tmp_path / "ran"
    (project / "bin" / "pymw_trap.py").write_text(
        f"open({str(marker)!r}, 'a').write('imported ')\n"
        "class Trap:\n"
        "    def __init__(self, *args, **kwargs):\n"
        f"        open({str(marker)!r}, 'a').write('instantiated ')\n"
    )
    value = [
        {"$dataclass": ["pymw_trap:Trap", {"x": 1.0}]},
        {"$enum": ["pymw_trap:Trap", "X"]},
        {"$namedtuple": ["pymw_trap:Trap", [1.0]]},
        {"$ndarray": ["<f8", [2], "AAAAAAAA8D8AAAAAAAAAQA=="]},  # [1.0, 2.0]
    ]
    first = output(project, 0, value_output_json(value))
    assert validate(project, first, block_numpy=True).returncode == MATCH
    run = validate(project, first, output(project, 1, value_output_json(value)), block_numpy=True)
    assert run.returncode == MATCH, run.stderr
    assert not marker.exists()
    # The master's decoding, whose allow-list holds no such class, refuses them.
    with pytest.raises(contract.ContractError, match="not a class of the task's program"):
        contract.decode_output(value_output_json(value))
