"""The safe codec's rich values (numpy, datetimes, program classes), against hostile data.

Decoding never runs code: a record is rebuilt only into a class of the allow-list, an array
only from a plain dtype whose bytes add up, and anything else is a ContractError.
"""

import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import json
import math
import pathlib
import struct
import subprocess
import sys
import typing
import uuid
import zoneinfo
from pathlib import Path

import pytest

from pyboinc import contract

numpy = pytest.importorskip("numpy")

ROOT = Path(contract.__file__).resolve().parents[1]


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Permission(enum.Flag):
    READ = 1
    WRITE = 2


class Priority(enum.IntEnum):
    LOW = 1


class Point(typing.NamedTuple):
    x: float
    y: float


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    name: str
    where: Point
    color: Color
    derived: int = dataclasses.field(init=False, default=0)

    def __post_init__(self):
        raise AssertionError("decoding must not run __post_init__")


class Outer:
    @dataclasses.dataclass
    class Inner:
        items: list


def _sample(name="s1"):
    sample = object.__new__(Sample)  # past the __post_init__ that decoding must not run
    for field, value in [("name", name), ("where", Point(1.0, 2.0)), ("color", Color.RED)]:
        object.__setattr__(sample, field, value)
    object.__setattr__(sample, "derived", 7)
    return sample


ALLOWED = {
    contract.class_key(kind): kind
    for kind in (Color, Permission, Point, Sample, Outer.Inner, Priority)
}


def round_trip(value, classes=ALLOWED):
    return contract.decode(contract.encode(value, classes=classes), classes=classes)


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2024, 2, 29, 23, 59, 59, 999999),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=-3))),
        datetime.date(1999, 12, 31),
        datetime.time(23, 1, 2, 3),
        datetime.time(1, 2, tzinfo=datetime.timezone(datetime.timedelta(minutes=330))),
        datetime.timedelta(days=-2, seconds=3, microseconds=4),
        decimal.Decimal("-0.010"),
        decimal.Decimal("Infinity"),
        fractions.Fraction(-22, 7),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        pathlib.PurePosixPath("results/run 1.txt"),
        Color.GREEN,
        Permission.READ | Permission.WRITE,
        Point(0.5, -1.0),
        Outer.Inner([Point(1, 2), {"k": (Color.RED,)}]),
        numpy.float32(1.25),
        numpy.int8(-3),
        numpy.uint64(2**64 - 1),
        numpy.bool_(True),
        numpy.complex128(1 - 2j),
        numpy.str_("hé"),
        numpy.bytes_(b"ab"),
        numpy.datetime64("2024-05-01T12:00"),
        numpy.timedelta64(5, "ms"),
    ],
    ids=repr,
)
def test_rich_values_round_trip_as_their_own_type(value):
    decoded = round_trip(value)
    assert decoded == value
    assert type(decoded) is type(value)


def test_a_zoneinfo_datetime_keeps_its_zone_and_fold():
    value = datetime.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("US/Eastern"))
    decoded = round_trip(value)
    assert decoded.tzinfo == value.tzinfo
    assert (decoded.fold, decoded.utcoffset()) == (1, value.utcoffset())


def test_a_dataclass_is_rebuilt_without_running_its_code():
    decoded = round_trip(_sample())
    assert decoded == _sample()
    assert type(decoded.where) is Point and decoded.color is Color.RED
    assert decoded.derived == 7  # init=False fields travel too


def test_a_concrete_path_arrives_as_the_pure_path_it_equals():
    decoded = round_trip(pathlib.Path("/data/x.csv"))
    assert decoded == pathlib.PurePosixPath("/data/x.csv")
    assert type(decoded) is pathlib.PurePosixPath


@pytest.mark.parametrize(
    "array",
    [
        numpy.arange(12.0).reshape(3, 4),
        numpy.arange(12, dtype=">i4").reshape(3, 4).T,  # big-endian, not C-contiguous
        numpy.asfortranarray(numpy.ones((2, 3), dtype=numpy.float16)),
        numpy.array([[True, False]]),
        numpy.array(["a", "bcd"]),
        numpy.array([b"x", b"yz"]),
        numpy.array(["2024-01-01", "NaT"], dtype="datetime64[D]"),
        numpy.zeros((0, 5)),
        numpy.arange(5000, dtype=numpy.uint8),  # long enough to travel as a raw buffer
        numpy.array(3.5),
    ],
    ids=lambda array: f"{array.dtype}{list(array.shape)}",
)
def test_numpy_arrays_round_trip_writable(array):
    decoded = round_trip(array)
    assert type(decoded) is numpy.ndarray
    assert (decoded.dtype, decoded.shape) == (array.dtype, array.shape)
    assert decoded.tobytes() == array.tobytes()  # bit for bit, NaT included
    decoded[...] = array  # ProcessPoolExecutor hands back writable arrays too


def test_nan_and_infinities_survive():
    values = [math.nan, -math.inf, complex(math.nan, math.inf)]
    decoded = round_trip(values)
    assert math.isnan(decoded[0]) and decoded[1] == -math.inf
    assert math.isnan(decoded[2].real) and decoded[2].imag == math.inf
    array = round_trip(numpy.array([numpy.nan, numpy.inf]))
    assert numpy.isnan(array[0]) and array[1] == numpy.inf
    assert round_trip(decimal.Decimal("NaN")).is_nan()


def test_long_bytes_travel_raw_after_the_json():
    payload = bytes(range(256)) * 1000
    encoded = contract.encode({"blob": payload, "small": b"ab"})
    assert encoded.startswith(b"\0") and len(encoded) < len(payload) + 200
    assert contract.decode(encoded) == {"blob": payload, "small": b"ab"}
    assert contract.encode(b"ab").startswith(b'{"$bytes"')  # short bytes stay readable


LONG = contract.RAW_NUMBERS_ITEMS


@pytest.mark.parametrize(
    "numbers",
    [
        list(range(-LONG, LONG)),
        [2**63 - 1, -(2**63)] * LONG,
        [0.5, -0.0, math.inf, 1e-308] * LONG,
    ],
    ids=["ints", "64-bit limits", "floats"],
)
def test_long_lists_of_ints_or_floats_travel_as_raw_numbers(numbers):
    encoded = contract.encode({"column": numbers})
    # 8 bytes a number after the JSON, not its digits as text
    assert encoded.startswith(b"\0") and str(numbers[3]).encode() not in encoded
    decoded = contract.decode(encoded)["column"]
    assert decoded == numbers and [type(x) for x in decoded] == [type(x) for x in numbers]
    assert [math.copysign(1, x) for x in decoded] == [math.copysign(1, x) for x in numbers]
    assert contract.decode(encoded, classes=contract.STRUCTURAL)["column"] == numbers


@pytest.mark.parametrize(
    "items",
    [
        [True, False] * LONG,  # bools stay bools
        [1] * LONG + [1.0],  # a float among ints
        [1.0] * LONG + [1],
        [1] * LONG + [2**64],  # past 64 bits
        [2**64] + [1] * LONG,
        [1] * LONG + [Priority.LOW] + [1],  # an IntEnum member, not an int
        ["a"] * LONG,
        [(1, 2)] * LONG,  # one type, but not a number: each item is walked
        [[(1,), {2}]] * LONG,
    ],
    ids=[
        "bools",
        "float among ints",
        "int among floats",
        "big int",
        "big int first",
        "int enum",
        "strings",
        "tuples",
        "lists of rich values",
    ],
)
def test_lists_that_are_not_all_one_number_type_keep_their_items_types(items):
    decoded = round_trip(items)
    assert decoded == items and [type(x) for x in decoded] == [type(x) for x in items]


def test_builtin_exception_and_program_classes_travel_as_classes():
    # `submit(check, ValueError)`: the class is looked up on the other side, not imported.
    assert round_trip([RuntimeError, KeyError, Sample]) == [RuntimeError, KeyError, Sample]
    with pytest.raises(contract.UnlistedClassError, match="cannot carry a Sample"):
        contract.encode(Sample)


def test_a_record_of_a_class_outside_the_allow_list_cannot_be_encoded():
    with pytest.raises(contract.UnlistedClassError, match="cannot carry a Sample") as raised:
        contract.encode([_sample()])
    assert raised.value.kind is Sample
    with pytest.raises(TypeError, match="cannot carry a Color"):
        contract.encode(Color.RED)


def test_outside_the_allow_list_int_enums_and_namedtuples_travel_as_their_base():
    assert type(contract.decode(contract.encode(Priority.LOW))) is int
    assert contract.decode(contract.encode(Point(1, 2))) == (1, 2)


class _Label(str):
    pass


@pytest.mark.parametrize(
    ("value", "base"),
    [
        (collections.OrderedDict(b=1, a=2), dict),
        (collections.defaultdict(int, a=1), dict),
        (collections.Counter("aab"), dict),
        (_Label("x"), str),
        (bytearray(b"xy"), bytes),
        (memoryview(b"xy"), bytes),
    ],
)
def test_other_subclasses_of_plain_types_arrive_as_the_type_they_extend(value, base):
    """What docs/laptop.md promises: the values kept, the class not."""
    decoded = contract.decode(contract.encode(value))
    assert type(decoded) is base
    assert decoded == base(value)


def test_a_namespace_serves_as_allow_list_even_under_an_alias():
    namespace = {"Renamed": Sample, "Point": Point, "Color": Color}
    assert round_trip(_sample(), classes=namespace) == _sample()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (numpy.array([1, None], dtype=object), "dtype object"),
        (numpy.zeros(2, dtype=[("a", "f8"), ("b", "i4")]), "dtype"),
        (numpy.ma.masked_array([1]), "MaskedArray"),
        (datetime.datetime(2024, 1, 1, tzinfo=datetime.tzinfo()), "time zone"),
        (pathlib.PureWindowsPath("C:/x"), "PureWindowsPath"),
        (object(), "cannot carry a object"),
    ],
)
def test_encode_names_what_cannot_travel(value, message):
    with pytest.raises(TypeError, match=message):
        contract.encode(value)


def test_a_value_containing_itself_is_a_type_error_not_a_crash():
    loop = []
    loop.append(loop)
    with pytest.raises(TypeError, match="nested this deeply"):
        contract.encode(loop)


def _array(dtype, shape, data=b""):
    import base64

    return json.dumps({"$ndarray": [dtype, shape, base64.b64encode(data).decode()]}).encode()


def _container(text: bytes, buffers, lengths=None, count=None):
    lengths = [len(b) for b in buffers] if lengths is None else lengths
    count = len(lengths) if count is None else count
    head = struct.pack(f">II{len(lengths)}Q", len(text), count, *lengths)
    return contract._CONTAINER_MAGIC + head + text + b"".join(buffers)


HOSTILE = {
    # classes: only the allow-list's, never one the data names
    "class outside the allow-list": b'{"$dataclass": ["os:system", {}]}',
    "builtin named as a record": b'{"$enum": ["builtins:type", "mro"]}',
    "allowed class, wrong kind": json.dumps({"$enum": [contract.class_key(Sample), "x"]}),
    "dataclass with an extra field": json.dumps(
        {"$dataclass": [contract.class_key(Outer.Inner), {"items": [], "__class__": 1}]}
    ),
    "dataclass missing a field": json.dumps({"$dataclass": [contract.class_key(Outer.Inner), {}]}),
    "namedtuple of the wrong arity": json.dumps({"$namedtuple": [contract.class_key(Point), [1]]}),
    "enum member that does not exist": json.dumps({"$enum": [contract.class_key(Color), "BLUE"]}),
    "enum value for a non-Flag enum": json.dumps({"$enum": [contract.class_key(Color), 1]}),
    "class name too long": json.dumps({"$enum": ["m:" + "C" * 10_000, "x"]}),
    "class value outside the allow-list": b'{"$class": "os:system"}',
    "builtin class value that is not an exception": b'{"$class": "type"}',
    "builtin class value outside Exception": b'{"$class": "SystemExit"}',
    # numpy: plain dtypes only, bytes that add up
    "object dtype": _array("|O", [1], b"\0" * 8),
    "structured dtype": _array("f8,i4", [1], b"\0" * 12),
    "subarray dtype": _array("(2,)f8", [1], b"\0" * 16),
    "void dtype": _array("|V8", [1], b"\0" * 8),
    "zero-size dtype": _array("|S0", [1]),
    "huge dtype": _array("|S99999999999", [0]),
    "dtype with trailing text": _array("<f8\n", [1], b"\0" * 8),
    "dtype not a string": b'{"$ndarray": [8, [1], ""]}',
    "shape lies about the bytes": _array("<f8", [10], b"\0" * 8),
    "negative shape": _array("<f8", [-1], b""),
    "huge shape": _array("|u1", [2**62], b""),
    "huge shape hidden by a zero": _array("|u1", [0, 2**40], b""),
    "boolean in the shape": _array("<f8", [True], b"\0" * 8),
    "too many dimensions": _array("<f8", [1] * 40, b"\0" * 8),
    "array over the cap": _array("<f8", [2**28], b""),
    "scalar with a shape": json.dumps({"$npscalar": ["<f8", [2], "A" * 24]}),
    # raw buffers: each used once, lengths that add up
    "buffer index without buffers": b'{"$bytes": 0}',
    "buffer used twice": _container(b'[{"$bytes": 0}, {"$bytes": 0}]', [b"x" * 8]),
    "buffer index out of range": _container(b'{"$bytes": 1}', [b"x"]),
    "buffer lengths that do not add up": _container(b'{"$bytes": 0}', [b"x" * 8], [9]),
    "buffer count that lies": _container(b"1", [], [], count=2**31),
    "truncated container": contract._CONTAINER_MAGIC + b"\0\0",
    "raw ints of a partial number": _container(b'{"$int64s": 0}', [b"x" * 12]),
    "raw floats used twice": _container(b'[{"$float64s": 0}, {"$float64s": 0}]', [b"x" * 8]),
    "raw ints as base64 text": b'{"$int64s": "AAAAAAAAAAA="}',
    "raw ints without buffers": b'{"$int64s": 0}',
    # tags with wrong payload types
    "tuple of a dict": b'{"$tuple": {"a": 1}}',
    "set of a number": b'{"$set": 5}',
    "complex of text": b'{"$complex": ["a", 1]}',
    "complex of one part": b'{"$complex": [1]}',
    "bytes of null": b'{"$bytes": null}',
    "datetime of a bare string": b'{"$datetime": "2024-01-01"}',
    "datetime that is not one": b'{"$datetime": ["yesterday", null]}',
    "naive datetime with a zone": b'{"$datetime": ["2024-01-01T00:00:00", "UTC"]}',
    "zone outside the zone database": (
        b'{"$datetime": ["2024-01-01T00:00:00+00:00", "../../etc/passwd"]}'
    ),
    "timedelta overflow": b'{"$timedelta": [10000000000, 0, 0]}',
    "timedelta of floats": b'{"$timedelta": [1.5, 0, 0]}',
    "decimal too long": json.dumps({"$decimal": "1" * 5000}),
    "decimal that is not one": b'{"$decimal": "abc"}',
    "fraction over zero": b'{"$fraction": [1, 0]}',
    "fraction of booleans": b'{"$fraction": [true, 1]}',
    "uuid that is not one": b'{"$uuid": "zz"}',
    "path of a number": b'{"$path": 5}',
    # nesting deep enough to blow the stack, through tags too
    "deep lists": b"[" * 100_000 + b"]" * 100_000,
    "deep tuples": b'{"$tuple": [' * 50_000 + b"]}" * 50_000,
    # a pickle is never decoded by the safe codec
    "a pickle": b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01.",
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_data_is_a_contract_error(data):
    data = data.encode() if isinstance(data, str) else data
    with pytest.raises(contract.ContractError):
        contract.decode(data, classes=ALLOWED)


def test_a_pickled_envelope_is_refused_unless_asked_for():
    envelope = contract.encode_input((1,), codec=contract.CODEC_PICKLE)
    with pytest.raises(contract.ContractError, match="pickled envelope was refused"):
        contract.decode_input(envelope)
    assert contract.decode_input(envelope, allow_pickle=True)[0] == (1,)
    output = contract.call_task(len, ([1, 2],), codec=contract.CODEC_PICKLE).encoded
    with pytest.raises(contract.ContractError, match="refused"):
        contract.decode_output(output)
    assert contract.decode_output(output, codec=contract.CODEC_PICKLE).value == 2


def test_the_pickle_codec_carries_program_classes_by_key():
    """The master's class comes back, not a copy rebuilt by value."""
    data = contract.pickle_dumps([_sample()], classes=ALLOWED, every_class=True)
    assert contract.class_key(Sample).encode() in data
    assert contract.pickle_loads(data, classes=ALLOWED) == [_sample()]
    with pytest.raises(Exception, match="not part of the task's program"):
        contract.pickle_loads(data, classes={})


def test_the_codec_imports_numpy_only_for_arrays():
    """The codec runs on a bare interpreter and the frozen worker: numpy is optional."""
    script = """
import sys, datetime
sys.modules["numpy"] = None  # as if numpy were not installed
from pyboinc import contract
value = {"when": datetime.date(2024, 1, 1), "data": (1.5, b"x" * 5000)}
assert contract.decode(contract.encode(value)) == value
try:
    contract.decode(b'{"$ndarray": ["<f8", [1], "AAAAAAAAAAA="]}')
except contract.ContractError as error:
    print(error)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert "numpy is not installed" in run.stdout and "install numpy" in run.stdout
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pyboinc import contract; import sys;"
            "contract.decode(contract.encode([1, (2,), {'a': b'x'}]));"
            "print('numpy' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert plain.stdout.strip() == "False", plain.stderr


# ------------------------------------ structural decoding (BOINC's validator, no program)


def structural(value, classes=ALLOWED):
    return contract.decode(contract.encode(value, classes=classes), classes=contract.STRUCTURAL)


def test_structural_decoding_gives_neutral_records_and_arrays():
    decoded = structural({"s": Outer.Inner([Point(1.0, 2.0)]), "c": {Color.RED}})
    point = contract.Record(kind="namedtuple", key=contract.class_key(Point), fields=(1.0, 2.0))
    assert decoded["s"] == contract.Record(
        kind="dataclass", key=contract.class_key(Outer.Inner), fields=(("items", [point]),)
    )
    red = contract.Record(kind="enum", key=contract.class_key(Color), fields=("RED",))
    assert decoded["c"] == {red}
    assert structural(Permission.READ | Permission.WRITE).fields == (3,)
    with pytest.raises(AttributeError, match="read-only"):
        point.key = "os:system"


@pytest.mark.parametrize(
    ("value", "values"),
    [
        (numpy.arange(6, dtype=">i4").reshape(2, 3).T, (0, 3, 1, 4, 2, 5)),  # C order
        (numpy.array([1 - 2j, 3j], numpy.complex64), (1 - 2j, 3j)),
        (numpy.array([0.5, -1.0], numpy.float16), (0.5, -1.0)),
        (numpy.array([True, False]), (True, False)),
        (numpy.uint64(2**64 - 1), (2**64 - 1,)),
        (numpy.array([b"ab"]), None),  # no Python numbers: compared by bytes
        (numpy.array(["2024-01-01"], "datetime64[D]"), None),
    ],
    ids=lambda value: str(getattr(value, "dtype", "")),
)
def test_a_structural_array_holds_dtype_shape_bytes_and_its_numbers(value, values):
    decoded = structural(value)
    array = numpy.asarray(value)
    assert (decoded.dtype, decoded.shape) == (array.dtype.str, array.shape)
    assert decoded.data == numpy.ascontiguousarray(array).tobytes()
    assert decoded.scalar == isinstance(value, numpy.generic)
    assert decoded.values() == values


# Hostile data that only a class lookup refuses: structurally it is a record of some key.
NAMES_A_CLASS = {
    "class outside the allow-list",
    "builtin named as a record",
    "allowed class, wrong kind",
    "dataclass with an extra field",
    "dataclass missing a field",
    "namedtuple of the wrong arity",
    "enum member that does not exist",
    "enum value for a non-Flag enum",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_structural_decoding_is_as_strict_without_classes_or_numpy(name):
    data = HOSTILE[name].encode() if isinstance(HOSTILE[name], str) else HOSTILE[name]
    if name in NAMES_A_CLASS:
        assert type(contract.decode(data, classes=contract.STRUCTURAL)) is contract.Record
        return
    with pytest.raises(contract.ContractError):
        contract.decode(data, classes=contract.STRUCTURAL)


DTYPES = [
    f"{order}{kind}{size}"
    for order in ("", "<", ">", "|", "=")
    for kind in "biufcSUVOm"
    for size in (0, 1, 2, 3, 4, 8, 12, 16, 32, 268435456, 268435457, 999999999)
] + [
    f"{kind}8[{multiple}{unit}]"
    for kind in "mM"
    for multiple in ("", "0", "25")
    for unit in ("Y", "W", "D", "h", "m", "ms", "us", "as", "B", "H", "x", "Ms", "US")
]


def test_structural_decoding_refuses_the_dtypes_numpy_decoding_refuses():
    """The dtype check is numpy-free, so that the validator's is the master's."""
    refused = {True: [], False: []}
    for text in DTYPES:
        data = _array(text, [0])
        outcomes = []
        for classes in (ALLOWED, contract.STRUCTURAL):
            try:
                contract.decode(data, classes=classes)
                outcomes.append("decoded")
            except contract.ContractError:
                outcomes.append("refused")
        assert outcomes[0] == outcomes[1], text
        refused[outcomes[0] == "refused"].append(text)
    assert len(refused[False]) > 100 and len(refused[True]) > 100
