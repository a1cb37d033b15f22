"""The PyMW worker contract: how one task travels to a worker and back.

Every engine speaks it (local processes, MPI ranks, Condor jobs, BOINC workunits), and every
worker runs it (a plain interpreter or the frozen PyBOINC executable). It is defined here and
nowhere else. A task is three files::

    <interpreter> <script.py> <input> <output>                 plain Python worker
    <worker exe>  <script.py> <stdlib zip> <input> <output>    custom worker app (PyBOINC)

- the *script* holds the task function, its dependencies and its imports; run as a program
  it reads the input, calls the function and writes the output;
- the *input* is an encoded envelope: the positional arguments, and the name of an optional
  zip of data files to unpack into the working directory first;
- the *output* is an encoded envelope: the return value or the error with its traceback,
  plus the captured stdout and stderr.

Outputs may come from machines nobody controls (BOINC volunteers), so the result codec is
tagged JSON, decoded without ever running code: no pickle, no eval. Only plain data types
travel: None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset.

Why this module imports only the standard library, lazily where it can: generated scripts
import it on every worker, so its import time is paid per task in fresh-process mode, and
where the worker has no PyMW installed the script carries this file's source and runs it
from there. It must never import pymw or the rest of pyboinc.
"""

import contextvars
import io
import operator
import os
import sys
import types

CONTRACT_VERSION = 3
INPUT_FORMAT = "pymw-input/1"
OUTPUT_FORMAT = "pymw-output/1"

# Exit statuses of a task script. A task that raised still writes its output (the error
# record) and its traceback to stderr; it exits EXIT_TASK_FAILED, except in a BOINC slot
# (see task_main). The other statuses mean the contract itself was broken.
EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_BAD_INVOCATION = 2
EXIT_BAD_INPUT = 3
EXIT_SCRIPT_REFUSED = 4

# The file a BOINC client writes into every slot directory it runs an app in.
BOINC_INIT_DATA = "init_data.xml"

# Captured stdout/stderr kept per stream; the rest is cut, so a chatty task cannot push its
# output over BOINC's max_nbytes (64 KiB by PyMW's default).
MAX_CAPTURED_CHARS = 8192
# Defaults for untrusted archives sent with a task.
MAX_UNZIPPED_BYTES = 1 << 30
MAX_ARCHIVE_MEMBERS = 10_000

# Type tags of the safe codec: a one-key JSON object `{tag: payload}` is a value of that type.
_TAG_TUPLE = "$tuple"
_TAG_DICT = "$dict"
_TAG_BYTES = "$bytes"
_TAG_INT64S = "$int64s"
_TAG_FLOAT64S = "$float64s"
_TAG_SET = "$set"
_TAG_FROZENSET = "$frozenset"
_TAG_COMPLEX = "$complex"
_TAG_NDARRAY = "$ndarray"
_TAG_NPSCALAR = "$npscalar"
_TAG_DATETIME = "$datetime"
_TAG_DATE = "$date"
_TAG_TIME = "$time"
_TAG_TIMEDELTA = "$timedelta"
_TAG_DECIMAL = "$decimal"
_TAG_FRACTION = "$fraction"
_TAG_UUID = "$uuid"
_TAG_PATH = "$path"
_TAG_ENUM = "$enum"
_TAG_DATACLASS = "$dataclass"
_TAG_NAMEDTUPLE = "$namedtuple"
_TAG_CLASS = "$class"

# The two codecs. "json" (tagged JSON) is safe to decode from anyone; "pickle" is only for
# workers that are the user's own processes (engines with `trusted_workers = True`).
CODEC_JSON = "json"
CODEC_PICKLE = "pickle"
CODECS = (CODEC_JSON, CODEC_PICKLE)

# Caps on each value the safe codec decodes; the whole output is capped by the caller
# (`max_bytes`, the master's max_result_bytes). Nesting is capped by Python's recursion limit.
MAX_ARRAY_BYTES = 1 << 30
MAX_ARRAY_DIMS = 32  # numpy 1.x's limit (NPY_MAXDIMS)
MAX_NAME_CHARS = 256  # class, member and dtype names, ISO dates, UUIDs
MAX_NUMBER_CHARS = 4300  # Decimal text, as Python caps int parsing (int_max_str_digits)
# Bytes (and array data) this long or longer travel raw after the JSON, not as base64.
OUT_OF_BAND_BYTES = 4096
# Lists of this many ints, or floats, or more (all of one type) travel raw too, as 8-byte
# little-endian numbers: `Executor.map`'s chunks, whose JSON text costs 80 ns a number
# encoded and decoded, against 20 ns raw and the container's fixed 3 us (break-even near
# 45 numbers, measured on CPython 3.11).
RAW_NUMBERS_ITEMS = 64
# A binary container starts with a NUL, which no JSON text can start with.
_CONTAINER_MAGIC = b"\x00pymw-buffers/1\n"
_PICKLE_MAGIC = b"\x80"  # pickle protocol 2 and later
_PICKLE_PROTOCOL = 5
_NO_CLASSES: dict = {}


class ContractError(ValueError):
    """A file or value that does not follow the worker contract."""


class UnsafeArchiveError(ContractError):
    """A data archive that would write outside its directory or grow past its limits."""


class UnlistedClassError(TypeError):
    """A record (Enum, dataclass, NamedTuple) whose class is not in the allow-list given to
    `encode`; `kind` is the class, so a master can ship it with the program and retry."""

    def __init__(self, kind: type) -> None:
        super().__init__(
            f"PyMW's codec cannot carry a {kind.__qualname__}: its class is not part of the "
            "task's program; define it at the top level of the task function's module and "
            "use it there (or send plain data)"
        )
        self.kind = kind


# ---------------------------------------------------------------- safe codec: plain data
#
# The fast path: None, bool, int, float, str, list, tuple and dict of those are walked by
# `_to_json` without touching the rich-value code below.


_SCALARS = frozenset({type(None), bool, int, float, str})


def _to_json(value):
    # Scalar items are tested inline rather than walked: a call per item is most of it.
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        if len(value) >= RAW_NUMBERS_ITEMS:
            return _long_list_to_json(value)
        return [item if type(item) in _SCALARS else _to_json(item) for item in value]
    if kind is tuple:
        return {_TAG_TUPLE: [item if type(item) in _SCALARS else _to_json(item) for item in value]}
    if kind is dict:
        # Plain string keys stay a JSON object (fast, readable); anything else is tagged.
        walked = {}
        for key, item in value.items():
            if type(key) is not str or key[:1] == "$":
                return {_TAG_DICT: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
            walked[key] = item if type(item) in _SCALARS else _to_json(item)
        return walked
    return _to_json_other(value)


def _from_json_object(obj):
    """Rebuild a tagged value; an object without a `$` tag is a dict with string keys."""
    if len(obj) != 1:
        for key in obj:
            if key[:1] == "$":
                raise ContractError("an encoded object must have exactly one type tag")
        return obj
    ((tag, payload),) = obj.items()
    if tag[:1] != "$":
        return obj
    if tag == _TAG_TUPLE and type(payload) is list:  # the most common tag, inline
        return tuple(payload)
    rebuild = _DECODERS.get(tag)
    if rebuild is None:
        raise ContractError(f"unknown type tag {tag!r}")
    return rebuild(payload)


class _CodecCall:
    """The state of one encode or decode: the program's classes and the raw buffers."""

    __slots__ = ("buffers", "classes", "names", "used")

    def __init__(self, classes, buffers):
        self.classes, self.buffers = classes, buffers
        self.names: dict = {}  # class -> its name in `classes` (or None), found once
        self.used: set = set()  # buffers already decoded: each may be used once only


# No classes, no buffers: what decoding plain JSON needs, so it skips setting a context.
# Every encode sets its own call (a walk cannot know ahead whether it will need one).
_PLAIN = _CodecCall(_NO_CLASSES, ())
_current = contextvars.ContextVar("pymw_codec_call", default=_PLAIN)


_json_codecs = None  # (encode, decoder, structural decoder) of JSON text: see _json


def _json():
    """json's encoder and decoders, made on first use and then kept (json.dumps/loads build
    one on every call). json imports re and enum: milliseconds of every worker start that
    a task which only parses its arguments should not pay."""
    global _json_codecs
    if _json_codecs is None:
        import json
        from json import encoder

        _json_codecs = (
            _one_shot_encoder(json.JSONEncoder(separators=(",", ":")), encoder),
            _whole_text_decoder(json.JSONDecoder(object_hook=_from_json_object), json),
            _whole_text_decoder(json.JSONDecoder(object_hook=_from_json_structural), json),
        )
    return _json_codecs


def _one_shot_encoder(plain, module):
    """`plain.encode`, without building json's C encoder anew for every value (a
    microsecond each time: a map chunk's arguments and results are two values). It runs
    without json's circular-reference markers: `_to_json` builds a fresh tree, and a value
    that contains itself has already stopped it with a RecursionError."""
    if module.c_make_encoder is None:  # an interpreter without json's C speedups
        return plain.encode
    c_encode = module.c_make_encoder(
        None, plain.default, module.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    return lambda value: "".join(c_encode(value, 0))


def _whole_text_decoder(decoder, module):
    """`decoder.decode`, without its two whitespace scans when the text has none around
    it (`encode` writes none); any other text gets json's full decode and its errors.
    Returned with `decoder.raw_decode`, which decodes the one value at an index."""
    raw_decode, decode = decoder.raw_decode, decoder.decode

    def decode_text(text: str):
        try:
            value, end = raw_decode(text)
        except module.JSONDecodeError:  # leading whitespace, or malformed: json's verdict
            return decode(text)
        return value if end == len(text) else decode(text)

    return decode_text, raw_decode


def encode(value, *, classes=_NO_CLASSES) -> bytes:
    """Encode `value` as tagged JSON (UTF-8), with long bytes raw after it.

    `classes` maps names to the classes that may travel as Enum members, dataclasses and
    NamedTuples: on the master the program's allow-list, on a worker the task code's
    namespace. Raises TypeError naming what cannot travel.
    """
    return _encode_within(value, classes, "")


def _encode_within(value, classes, head: str) -> bytes:
    """`encode` of `head + value + "}"` (with `head` "": of the value alone): an
    envelope whose other fields are fixed, `head` being their JSON text as `encode` writes
    it, comes out byte for byte as `encode` of the whole dict would make it, without
    walking the dict (a task's input and output are an envelope each)."""
    call = _CodecCall(classes, [])
    token = _current.set(call)
    try:
        text = _json()[0](_to_json(value))
        if head:
            text = f"{head}{text}}}"
        text = text.encode("utf-8")
    except RecursionError:
        raise TypeError(
            "PyMW's codec cannot carry a value nested this deeply (or containing itself)"
        ) from None
    finally:
        _current.reset(token)
    return _pack_buffers(text, call.buffers) if call.buffers else text


def decode(data, *, classes=_NO_CLASSES, max_bytes: int | None = None):
    """Decode what `encode` made, safely: malformed or hostile input raises ContractError.

    Enum members, dataclasses and NamedTuples are rebuilt only into classes found in
    `classes` (never a class the data names otherwise), without calling their code. With
    `classes=STRUCTURAL` they, and numpy arrays, decode to neutral `Record` and `Array`
    values instead, for comparing outputs without the program or numpy (see STRUCTURAL).
    """
    return _decode_within(data, classes, max_bytes, "")[1]


def _decode_within(data, classes, max_bytes: int | None, head: str) -> tuple[bool, object]:
    """`(True, value)` for a text that is exactly `head + value + "}"` (what
    `_encode_within` makes), the envelope's fixed fields checked as text, not parsed
    into a dict; otherwise `(False, decode(data))`, every other text decoded whole."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ContractError(f"encoded value is {len(data)} bytes, over the {max_bytes} limit")
    token = None
    try:
        if data[:1] == b"\0":  # _CONTAINER_MAGIC
            data, buffers = _unpack_buffers(data)
            token = _current.set(_CodecCall(classes, buffers))
        elif classes:
            token = _current.set(_CodecCall(classes, ()))
        decoder, raw_decode = _json()[2] if classes is STRUCTURAL else _json()[1]
        text = str(data, "utf-8")
        if head and text.startswith(head) and text.endswith("}"):
            value, end = raw_decode(text, len(head))
            if end == len(text) - 1:
                return True, value
            if token is not None:  # the whole text uses its buffers once more
                _current.get().used.clear()
        return False, decoder(text)
    except ContractError:
        raise
    except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as error:
        raise ContractError(f"malformed encoded value: {error}") from None
    except RecursionError:
        raise ContractError("malformed encoded value: nested too deeply") from None
    finally:
        if token is not None:
            _current.reset(token)


# ------------------------------------------------------ safe codec: raw buffers container
#
#   MAGIC | u32 JSON length | u32 buffer count | u64 length per buffer | JSON | buffers
#
# `{"$bytes": 3}` (an int, not base64 text) is buffer 3. The frame to a long-lived worker
# and the files of fresh processes carry the container as it is, so 1 MB of bytes or array
# data is copied, not base64-encoded and scanned as JSON text.


_struct_module = None  # struct, imported on first use: see _struct


def _struct():
    """The struct module, imported once the first container or number list needs it (a
    worker start that never meets one does not pay for it)."""
    global _struct_module
    if _struct_module is None:
        import struct

        _struct_module = struct
    return _struct_module


_one_buffer = None  # see _one_buffer_head


def _one_buffer_head():
    """The struct of a container's head with one buffer (a number list: most containers),
    made once: its JSON length, the buffer count and the buffer's length."""
    global _one_buffer
    if _one_buffer is None:
        _one_buffer = _struct().Struct(">IIQ")
    return _one_buffer


def _pack_buffers(text: bytes, buffers: list) -> bytes:
    if len(buffers) == 1 and type(buffers[0]) is bytes:
        head = _one_buffer_head().pack(len(text), 1, len(buffers[0]))
        return b"".join((_CONTAINER_MAGIC, head, text, buffers[0]))
    lengths = [memoryview(buffer).nbytes for buffer in buffers]
    head = _struct().pack(f">II{len(lengths)}Q", len(text), len(lengths), *lengths)
    return b"".join([_CONTAINER_MAGIC, head, text, *buffers])


def _unpack_buffers(data) -> tuple[memoryview, list]:
    struct = _struct()
    view = memoryview(data)
    offset = len(_CONTAINER_MAGIC)
    if data[:offset] != _CONTAINER_MAGIC or len(view) < offset + 8:
        raise ContractError("malformed encoded value: not a PyMW buffers container")
    if len(view) >= offset + 16:
        text_size, count, length = _one_buffer_head().unpack_from(view, offset)
        if count == 1:  # read with the head's one struct, as _pack_buffers wrote it
            end = offset + 16 + text_size
            if end + length != len(view):
                raise ContractError("malformed encoded value: buffer lengths do not add up")
            return view[offset + 16 : end], [view[end:]]
    text_size, count = struct.unpack_from(">II", view, offset)
    offset += 8
    if count > (len(view) - offset) // 8:
        raise ContractError("malformed encoded value: more buffers than the data can hold")
    lengths = struct.unpack_from(f">{count}Q", view, offset)
    offset += 8 * count
    if offset + text_size + sum(lengths) != len(view):
        raise ContractError("malformed encoded value: buffer lengths do not add up")
    text, offset = view[offset : offset + text_size], offset + text_size
    buffers = []
    for length in lengths:
        buffers.append(view[offset : offset + length])
        offset += length
    return text, buffers


def _bytes_to_json(data):
    """Inline base64 for short bytes; a buffer index for long ones."""
    if len(data) >= OUT_OF_BAND_BYTES:
        buffers = _current.get().buffers
        buffers.append(data)
        return len(buffers) - 1
    import base64

    return base64.b64encode(data).decode("ascii")


def _buffer(index, tag) -> memoryview:
    """Raw buffer `index` of the value being decoded, which no other tag used before."""
    call = _current.get()
    if type(index) is not int or not 0 <= index < len(call.buffers) or index in call.used:
        raise ContractError(f"{tag} names a missing or already used buffer {index!r}")
    call.used.add(index)
    return call.buffers[index]


def _bytes_from_json(payload, tag=_TAG_BYTES) -> bytes:
    if type(payload) is int:
        return bytes(_buffer(payload, tag))
    import base64

    return base64.b64decode(_text(payload, tag, MAX_ARRAY_BYTES * 2).encode("ascii"), validate=True)


# Raw number lists: {"$int64s": buffer} and {"$float64s": buffer}, decoded to lists of
# Python ints or floats. Only a list whose items are all exactly int (no bool, no
# subclass) and fit 64 bits, or all exactly float, travels so: it decodes to what it was.
_NUMBER_TAGS = {int: (_TAG_INT64S, "q"), float: (_TAG_FLOAT64S, "d")}
_NUMBER_CODES = {tag: code for tag, code in _NUMBER_TAGS.values()}


def _long_list_to_json(value):
    first = type(value[0])
    number = _NUMBER_TAGS.get(first)
    # Counting the items of the first one's type is a third cheaper than a set of types.
    if number is not None and operator.countOf(map(type, value), first) == len(value):
        tag, code = number
        struct = _struct()
        try:  # struct packs a list 4 times faster than array.array takes one
            packed = struct.pack(f"<{len(value)}{code}", *value)
        except struct.error:  # ints past 64 bits: JSON carries any int
            return value
        buffers = _current.get().buffers
        buffers.append(packed)
        return {tag: len(buffers) - 1}
    if set(map(type, value)) <= _SCALARS:
        return value  # JSON as it is
    return [_to_json(item) for item in value]


def _numbers_from_json(payload, tag):
    raw = _buffer(payload, tag)
    if len(raw) % 8:
        raise ContractError(f"{tag} needs a whole number of 8-byte numbers")
    code = _NUMBER_CODES[tag]
    if sys.byteorder == "little":
        return raw.cast(code).tolist()
    return list(_struct().unpack(f"<{len(raw) // 8}{code}", raw))


# --------------------------------------------------- safe codec: rich values (slow path)


def _to_json_other(value):
    kind = type(value)
    module = kind.__module__
    if module == "numpy":
        return _numpy_to_json(value)
    stdlib = _STDLIB_ENCODERS.get((module, kind.__qualname__))
    if stdlib is not None and getattr(sys.modules.get(module), kind.__qualname__, None) is kind:
        return stdlib(value)
    enum = sys.modules.get("enum")  # not imported: value is no Enum member
    if enum is not None and isinstance(value, enum.Enum):
        return _enum_to_json(value)
    if isinstance(value, type):
        return _class_to_json(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value  # other subclasses travel as their base value
    if hasattr(kind, "__dataclass_fields__"):
        return _dataclass_to_json(value)
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        name = _class_name(kind, _current.get())
        if name is not None:
            return {_TAG_NAMEDTUPLE: [name, [_to_json(item) for item in value]]}
    for base in (list, tuple, dict):  # subclasses (other namedtuples, OrderedDict) as base
        if isinstance(value, base):
            return _to_json(base(value))
    if isinstance(value, (bytes, bytearray)):
        return {_TAG_BYTES: _bytes_to_json(value)}
    if isinstance(value, memoryview):
        return {_TAG_BYTES: _bytes_to_json(value.tobytes())}
    if isinstance(value, frozenset):
        return {_TAG_FROZENSET: [_to_json(item) for item in value]}
    if isinstance(value, set):
        return {_TAG_SET: [_to_json(item) for item in value]}
    if isinstance(value, complex):
        return {_TAG_COMPLEX: [value.real, value.imag]}
    raise TypeError(
        f"PyMW's codec cannot carry a {kind.__qualname__}; send plain data (None, bool, "
        "int, float, complex, str, bytes, list, tuple, dict, set), numpy arrays, datetimes, "
        "Decimal, Fraction, UUID, PurePosixPath, or Enum, dataclass and NamedTuple values "
        "of classes the task's code defines or imports (or use Executor(codec='pickle'))"
    )


def _text(payload, tag, limit=MAX_NAME_CHARS) -> str:
    if type(payload) is not str or len(payload) > limit:
        raise ContractError(f"{tag} needs a string of at most {limit} characters")
    return payload


def _items(payload, tag, count=None) -> list:
    if type(payload) is not list or (count is not None and len(payload) != count):
        raise ContractError(f"{tag} needs a list" + ("" if count is None else f" of {count}"))
    return payload


def _whole(value, tag) -> int:
    if type(value) is not int:
        raise ContractError(f"{tag} needs integers")
    return value


def _hashable(value):
    # JSON decodes before tags apply, so a tuple key arrives as a tuple, but a list key
    # (which Python could never have produced) must be refused, not crash the master.
    if isinstance(value, (list, dict, set)):
        raise ContractError("an unhashable value was sent as a key or set member")
    return value


def _decode_complex(payload):
    real, imag = _items(payload, _TAG_COMPLEX, 2)
    if not all(type(part) in (int, float) for part in (real, imag)):
        raise ContractError(f"{_TAG_COMPLEX} needs two numbers")
    return complex(real, imag)


_DECODERS = {
    _TAG_TUPLE: lambda payload: tuple(_items(payload, _TAG_TUPLE)),
    _TAG_DICT: lambda payload: {_hashable(k): v for k, v in _items(payload, _TAG_DICT)},
    _TAG_SET: lambda payload: {_hashable(item) for item in _items(payload, _TAG_SET)},
    _TAG_FROZENSET: lambda payload: frozenset(
        _hashable(item) for item in _items(payload, _TAG_FROZENSET)
    ),
    _TAG_BYTES: _bytes_from_json,
    _TAG_INT64S: lambda payload: _numbers_from_json(payload, _TAG_INT64S),
    _TAG_FLOAT64S: lambda payload: _numbers_from_json(payload, _TAG_FLOAT64S),
    _TAG_COMPLEX: _decode_complex,
}


# Program classes: Enum members, dataclasses, NamedTuples (and, in the envelope, exception
# types). A class travels by its key, "module:qualname" as the master names it (a class
# shipped as source keeps its master-side module), and is rebuilt only into a class found
# under that key in `classes`: the program's allow-list on the master (keyed so), or the task
# code's namespace on a worker (keyed by plain names, searched by qualified name, nested
# classes through their `__dict__`, so no attribute hook of any class runs).


def class_key(kind) -> str:
    """The name a class travels by: "module:qualname"."""
    return f"{kind.__module__}:{kind.__qualname__}"


def resolve_class(classes, key: str):
    """The class travelling as `key` among `classes` (an allow-list or a namespace), or None."""
    found = classes.get(key)
    if isinstance(found, type) and class_key(found) == key:
        return found
    qualname = key.partition(":")[2]
    head, _, rest = qualname.partition(".")
    found = classes.get(head)
    while rest and isinstance(found, type):
        part, _, rest = rest.partition(".")
        found = vars(found).get(part)
    if isinstance(found, type) and class_key(found) == key:
        return found
    # Bound under another name (`from module import C as D`).
    return next(
        (item for item in classes.values() if isinstance(item, type) and class_key(item) == key),
        None,
    )


def _class_name(kind, call):
    """`kind`'s key if it may travel (it is among the call's classes), else None."""
    try:
        return call.names[kind]
    except KeyError:
        pass
    key = class_key(kind)
    name = key if resolve_class(call.classes, key) is kind else None
    call.names[kind] = name
    return name


def _program_class(payload, tag, check):
    name, data = _items(payload, tag, 2)
    kind = resolve_class(_current.get().classes, _text(name, tag))
    if kind is None or not check(kind):
        raise ContractError(f"{tag} names {name!r}, which is not a class of the task's program")
    return kind, data


def _enum_to_json(member):
    kind = type(member)
    name = _class_name(kind, _current.get())
    if name is None:
        if isinstance(member, (int, float, str)):
            return _to_json(member._value_)  # an IntEnum or StrEnum travels as its value
        raise UnlistedClassError(kind)
    key = member._name_
    if kind.__members__.get(key) is not member:  # a combination of Flag members
        key = member._value_
    return {_TAG_ENUM: [name, key]}


def _decode_enum(payload):
    import enum

    kind, key = _program_class(payload, _TAG_ENUM, lambda kind: issubclass(kind, enum.Enum))
    if type(key) is str and key in kind.__members__:
        return kind.__members__[key]
    if type(key) is int and issubclass(kind, enum.Flag):
        return kind(key)
    raise ContractError(f"{_TAG_ENUM}: {kind.__qualname__} has no member {key!r}")


def _dataclass_to_json(value):
    import dataclasses

    name = _class_name(type(value), _current.get())
    if name is None:
        raise UnlistedClassError(type(value))
    fields = {
        field.name: _to_json(getattr(value, field.name)) for field in dataclasses.fields(value)
    }
    return {_TAG_DATACLASS: [name, fields]}


def _decode_dataclass(payload):
    import dataclasses

    kind, fields = _program_class(payload, _TAG_DATACLASS, dataclasses.is_dataclass)
    names = {field.name for field in dataclasses.fields(kind)}
    if type(fields) is not dict or set(fields) != names:
        raise ContractError(f"{_TAG_DATACLASS}: {kind.__qualname__} needs fields {sorted(names)}")
    # As unpickling does: no __init__ or __post_init__ runs; frozen and slots classes too.
    value = object.__new__(kind)
    for field_name, field_value in fields.items():
        object.__setattr__(value, field_name, field_value)
    return value


def _decode_namedtuple(payload):
    kind, items = _program_class(
        payload, _TAG_NAMEDTUPLE, lambda kind: issubclass(kind, tuple) and "_fields" in vars(kind)
    )
    if len(_items(items, _TAG_NAMEDTUPLE, len(kind._fields))) != len(kind._fields):
        raise ContractError(f"{_TAG_NAMEDTUPLE}: wrong number of fields")
    return tuple.__new__(kind, items)


def _builtin_exception(name):
    import builtins

    kind = vars(builtins).get(name)
    return kind if isinstance(kind, type) and issubclass(kind, Exception) else None


def _class_to_json(kind):
    """A class as a value (`submit(check, ValueError)`): a built-in exception class by its
    name, a program class by its key; the other side looks it up, never imports it."""
    if _builtin_exception(kind.__name__) is kind:
        return {_TAG_CLASS: kind.__name__}
    name = _class_name(kind, _current.get())
    if name is None:
        raise UnlistedClassError(kind)
    return {_TAG_CLASS: name}


def _decode_class(payload):
    name = _text(payload, _TAG_CLASS)
    kind = resolve_class(_current.get().classes, name) if ":" in name else _builtin_exception(name)
    if kind is None:
        raise ContractError(
            f"{_TAG_CLASS} names {name!r}, which is neither a built-in exception nor a class "
            "of the task's program"
        )
    return kind


_DECODERS.update(
    {
        _TAG_ENUM: _decode_enum,
        _TAG_DATACLASS: _decode_dataclass,
        _TAG_NAMEDTUPLE: _decode_namedtuple,
        _TAG_CLASS: _decode_class,
    }
)


# numpy arrays and scalars: dtype, shape and raw bytes. numpy is imported only when a
# value is one (encode: its type's module is "numpy"; decode: its tag appears).

_SAFE_DTYPE_KINDS = frozenset("biufcSUmM")  # numbers, bool, fixed-width strings, times


def _numpy_to_json(value):
    import numpy

    if type(value) is numpy.ndarray:
        tag, array = _TAG_NDARRAY, value
    elif isinstance(value, numpy.generic):
        tag, array = _TAG_NPSCALAR, numpy.asarray(value)
    else:
        raise TypeError(
            f"PyMW's codec cannot carry a numpy {type(value).__name__}; send an "
            "ndarray (numpy.asarray(value))"
        )
    dtype = array.dtype
    if dtype.kind not in _SAFE_DTYPE_KINDS or dtype.fields is not None or dtype.subdtype:
        raise TypeError(
            f"PyMW's codec cannot carry numpy arrays of dtype {dtype}; only "
            "numeric, bool, fixed-width string and datetime dtypes travel "
            "(or use Executor(codec='pickle'))"
        )
    # Raw bytes in C order, without a copy when the array already is C-contiguous.
    data = numpy.ascontiguousarray(array).reshape(-1).view(numpy.uint8)
    return {tag: [dtype.str, list(array.shape), _bytes_to_json(data)]}


# A safe dtype string, and each numeric kind's item sizes, as numpy 2 accepts them. Checked
# without numpy, so that decoding with numpy and the structural decoding without it (see
# STRUCTURAL) refuse the same dtypes; "f16" and "c32" are long doubles.
_DTYPE_TEXT = (
    r"([<>|=]?)(?:([biufcSU])(\d{1,9})"
    r"|([mM])8(?:\[\d{0,9}(?:Y|M|W|D|h|m|s|ms|us|ns|ps|fs|as)\])?)"
)
_ITEM_SIZES = {
    "b": (1,),
    "i": (1, 2, 4, 8),
    "u": (1, 2, 4, 8),
    "f": (2, 4, 8, 16),
    "c": (8, 16, 32),
}


def _dtype_parts(text) -> tuple[str, str, int]:
    """The byte order, kind and item size of a safe dtype string; ContractError if it is not
    one."""
    import re

    match = re.fullmatch(_DTYPE_TEXT, _text(text, "numpy dtype"))
    if match is None:
        raise ContractError(f"numpy dtype {text!r} is not a safe dtype")
    order, kind, digits, time_kind = match.groups()
    if time_kind is not None:
        return order, time_kind, 8
    itemsize = int(digits) * (4 if kind == "U" else 1)
    if itemsize not in _ITEM_SIZES.get(kind, (itemsize,)) or not 1 <= itemsize <= MAX_ARRAY_BYTES:
        raise ContractError(f"numpy dtype {text!r} is not a safe dtype")
    return order, kind, itemsize


def _array_parts(payload, tag) -> tuple[str, list, int, bytes]:
    """The dtype text, shape, element count and data of an array payload, every cap and
    count checked before any byte is copied, and without numpy."""
    text, shape, data = _items(payload, tag, 3)
    itemsize = _dtype_parts(text)[2]
    shape = _items(shape, tag)
    if len(shape) > MAX_ARRAY_DIMS or (tag == _TAG_NPSCALAR and shape):
        raise ContractError(f"{tag} has a malformed shape")
    count = 1
    for size in shape:
        if type(size) is not int or not 0 <= size <= MAX_ARRAY_BYTES:
            raise ContractError(f"{tag} has a malformed shape")
        count *= size
    if count * itemsize > MAX_ARRAY_BYTES:
        raise ContractError(f"{tag} is over {MAX_ARRAY_DIMS} dimensions or {MAX_ARRAY_BYTES} bytes")
    raw = _bytes_from_json(data, tag)
    if len(raw) != count * itemsize:
        raise ContractError(f"{tag} has {len(raw)} data bytes for shape {shape} of {text}")
    return text, shape, count, raw


def _array_from_json(payload, tag):
    text, shape, count, raw = _array_parts(payload, tag)
    try:
        import numpy
    except ImportError:
        raise ContractError(
            f"the value holds a numpy array, but numpy is not installed in "
            f"this Python ({sys.executable}); install numpy"
        ) from None
    return numpy.frombuffer(bytearray(raw), numpy.dtype(text), count).reshape(shape)


_DECODERS.update(
    {
        _TAG_NDARRAY: lambda payload: _array_from_json(payload, _TAG_NDARRAY),
        _TAG_NPSCALAR: lambda payload: _array_from_json(payload, _TAG_NPSCALAR)[()],
    }
)


# Standard-library values, found by their exact type (module and name) so that the modules
# are imported only when such a value is met.


def _zone_of(value, tag):
    import datetime

    zone = value.tzinfo
    if zone is None or type(zone) is datetime.timezone:
        return None
    if tag == _TAG_DATETIME and type(zone).__module__ == "zoneinfo" and zone.key:
        return zone.key
    raise TypeError(
        f"PyMW's codec cannot carry a {type(value).__name__} in time zone "
        f"{zone!r}; only UTC, fixed offsets (datetime.timezone) and zoneinfo "
        "zones travel"
    )


def _datetime_to_json(value):
    zone = _zone_of(value, _TAG_DATETIME)  # first: an unknown tzinfo may fail in isoformat
    return {_TAG_DATETIME: [value.isoformat(), zone]}


def _decode_datetime(payload):
    import datetime

    text, zone = _items(payload, _TAG_DATETIME, 2)
    value = datetime.datetime.fromisoformat(_text(text, _TAG_DATETIME))
    if zone is None:
        return value
    import zoneinfo

    if value.tzinfo is None:
        raise ContractError(f"{_TAG_DATETIME} with a zone needs a UTC offset")
    try:
        return value.astimezone(zoneinfo.ZoneInfo(_text(zone, _TAG_DATETIME)))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ContractError(f"{_TAG_DATETIME}: unknown time zone {zone!r} ({error})") from None


def _time_to_json(value):
    _zone_of(value, _TAG_TIME)
    return {_TAG_TIME: value.isoformat()}


def _decode_time(payload):
    import datetime

    return datetime.time.fromisoformat(_text(payload, _TAG_TIME))


def _decode_date(payload):
    import datetime

    return datetime.date.fromisoformat(_text(payload, _TAG_DATE))


def _decode_timedelta(payload):
    import datetime

    days, seconds, microseconds = (
        _whole(part, _TAG_TIMEDELTA) for part in _items(payload, _TAG_TIMEDELTA, 3)
    )
    return datetime.timedelta(days, seconds, microseconds)


def _decode_decimal(payload):
    import decimal

    try:
        return decimal.Decimal(_text(payload, _TAG_DECIMAL, MAX_NUMBER_CHARS))
    except decimal.InvalidOperation:
        raise ContractError(f"{_TAG_DECIMAL}: not a decimal number") from None


def _decode_fraction(payload):
    import fractions

    numerator, denominator = (
        _whole(part, _TAG_FRACTION) for part in _items(payload, _TAG_FRACTION, 2)
    )
    return fractions.Fraction(numerator, denominator)


def _decode_uuid(payload):
    import uuid

    return uuid.UUID(hex=_text(payload, _TAG_UUID))


def _decode_path(payload):
    import pathlib

    return pathlib.PurePosixPath(_text(payload, _TAG_PATH, MAX_NUMBER_CHARS))


_STDLIB_ENCODERS = {
    ("datetime", "datetime"): _datetime_to_json,
    ("datetime", "date"): lambda value: {_TAG_DATE: value.isoformat()},
    ("datetime", "time"): _time_to_json,
    ("datetime", "timedelta"): lambda value: {
        _TAG_TIMEDELTA: [value.days, value.seconds, value.microseconds]
    },
    ("decimal", "Decimal"): lambda value: {_TAG_DECIMAL: str(value)},
    ("fractions", "Fraction"): lambda value: {_TAG_FRACTION: [value.numerator, value.denominator]},
    ("uuid", "UUID"): lambda value: {_TAG_UUID: value.hex},
    # A concrete PosixPath arrives as the PurePosixPath it equals: the path, not the file.
    ("pathlib", "PurePosixPath"): lambda value: {_TAG_PATH: str(value)},
    ("pathlib", "PosixPath"): lambda value: {_TAG_PATH: str(value)},
}

_DECODERS.update(
    {
        _TAG_DATETIME: _decode_datetime,
        _TAG_DATE: _decode_date,
        _TAG_TIME: _decode_time,
        _TAG_TIMEDELTA: _decode_timedelta,
        _TAG_DECIMAL: _decode_decimal,
        _TAG_FRACTION: _decode_fraction,
        _TAG_UUID: _decode_uuid,
        _TAG_PATH: _decode_path,
    }
)


# ------------------------------ safe codec: structural decoding (comparison, no program)
#
# BOINC's validator compares two volunteers' outputs on the project server, which has
# neither the program's classes nor, perhaps, numpy. `decode(data, classes=STRUCTURAL)`
# decodes records and arrays to neutral values instead, with every check and cap of the
# normal decoding but those that need the class (its fields, arity and members): no class
# the data names is imported, looked up or instantiated, and numpy is never imported.
# Everything else decodes as usual.

STRUCTURAL = types.MappingProxyType({})  # an allow-list of no class: encoding sees no classes


class _Neutral:
    """A read-only value of a structural decoding: equal to another of its type with equal
    parts, and hashable when they are (so it can be a set member or a dict key)."""

    __slots__ = ()

    def __init__(self, **parts) -> None:
        if parts.keys() != set(self.__slots__):
            raise TypeError(f"a {type(self).__name__} has the parts {self.__slots__}")
        for name, part in parts.items():
            object.__setattr__(self, name, part)

    def __setattr__(self, name, value):
        raise AttributeError(f"a {type(self).__name__} is read-only")

    def _parts(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other):
        return type(other) is type(self) and self._parts() == other._parts()

    def __hash__(self):
        return hash(self._parts())

    def __repr__(self):
        parts = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({parts})"


class Record(_Neutral):
    """An Enum member, dataclass or NamedTuple as the data describes it: `kind` ("enum",
    "dataclass", "namedtuple"), the class `key` as sent, and `fields`: `(member name or
    Flag value,)`, the `(field, value)` pairs in the order sent, or the items."""

    __slots__ = ("fields", "key", "kind")
    kind: str
    key: str
    fields: tuple


# struct codes of the dtypes whose elements are Python numbers: (kind, item size) -> code.
_STRUCT_CODES = {
    ("b", 1): "?",
    **{("i", size): code for size, code in zip((1, 2, 4, 8), "bhiq", strict=True)},
    **{("u", size): code for size, code in zip((1, 2, 4, 8), "BHIQ", strict=True)},
    **{("f", size): code for size, code in zip((2, 4, 8), "efd", strict=True)},
    ("c", 8): "f",  # complex numbers: pairs of floats
    ("c", 16): "d",
}


class Array(_Neutral):
    """A numpy array (or, `scalar`, a numpy scalar) as dtype text, shape and raw C-order
    bytes."""

    __slots__ = ("data", "dtype", "scalar", "shape")
    dtype: str
    shape: tuple
    data: bytes
    scalar: bool

    def values(self) -> tuple | None:
        """The elements in C order as Python bools, ints, floats or complex numbers; None
        for the dtypes that have no such meaning here (strings, datetimes, long doubles)."""
        order, kind, itemsize = _dtype_parts(self.dtype)
        code = _STRUCT_CODES.get((kind, itemsize))
        if code is None:
            return None
        import struct

        order = order if order in ("<", ">") else "="  # "|" and "": this host's order
        count = len(self.data) // struct.calcsize(code)
        numbers = struct.unpack(f"{order}{count}{code}", self.data)
        if kind == "c":
            return tuple(map(complex, numbers[::2], numbers[1::2]))
        return numbers


def _neutral_record(tag, fields_of):
    def decode(payload):
        key, data = _items(payload, tag, 2)
        if ":" not in _text(key, tag):
            raise ContractError(f"{tag} names {key!r}, which is not a class key")
        return Record(kind=tag[1:], key=key, fields=fields_of(data))

    return decode


def _enum_member(member) -> tuple:
    if type(member) is not int:  # an int is a Flag combination's value, else a name
        _text(member, _TAG_ENUM)
    return (member,)


def _dataclass_fields(fields) -> tuple:
    if type(fields) is not dict:
        raise ContractError(f"{_TAG_DATACLASS} needs an object of fields")
    return tuple(fields.items())


def _neutral_array(payload, tag) -> Array:
    text, shape, _, raw = _array_parts(payload, tag)
    return Array(dtype=text, shape=tuple(shape), data=raw, scalar=tag == _TAG_NPSCALAR)


_NEUTRAL_DECODERS = {
    _TAG_ENUM: _neutral_record(_TAG_ENUM, _enum_member),
    _TAG_DATACLASS: _neutral_record(_TAG_DATACLASS, _dataclass_fields),
    _TAG_NAMEDTUPLE: _neutral_record(
        _TAG_NAMEDTUPLE, lambda items: tuple(_items(items, _TAG_NAMEDTUPLE))
    ),
    _TAG_NDARRAY: lambda payload: _neutral_array(payload, _TAG_NDARRAY),
    _TAG_NPSCALAR: lambda payload: _neutral_array(payload, _TAG_NPSCALAR),
}


def _from_json_structural(obj):
    """`_from_json_object`, with records and arrays decoded to neutral values."""
    if len(obj) == 1:
        ((tag, payload),) = obj.items()
        neutral = _NEUTRAL_DECODERS.get(tag)
        if neutral is not None:
            return neutral(payload)
    return _from_json_object(obj)


# ------------------------------------------------------- trusted codec: pickle (opt-in)
#
# Only for engines whose workers are the user's own processes: the master unpickles
# outputs only when its engine says `trusted_workers = True`, and workers unpickle inputs
# only in the long-lived generic and MPI loops (`allow_pickle`), never in a task script,
# which BOINC, batch systems and signing workers run. Classes of the program's allow-list
# travel by key (a persistent id): from the master all of them, from a worker those its
# task code defines as source, so a value comes back as an instance of the master's own
# class. cloudpickle, when installed, carries what else `__main__` defines by value.


def codec_of(data) -> str:
    """The codec that made an encoded input or output."""
    return CODEC_PICKLE if data[:1] == _PICKLE_MAGIC else CODEC_JSON


def _defined_by_source(kind) -> bool:
    # A class the other side cannot import by its module: the user's script, or the task
    # code a worker executed into a module of its own.
    return kind.__module__ == "__main__" or kind.__module__ not in sys.modules


def pickle_dumps(value, *, classes=_NO_CLASSES, every_class: bool = False) -> bytes:
    """Pickle `value`; classes among `classes` go by key, all of them with `every_class`
    (the master's allow-list), else only those defined as source (a worker's namespace).
    A value that does not pickle raises pickle's own error (or its `__reduce__`'s), which
    is what ProcessPoolExecutor's futures fail with."""
    import io
    import pickle

    try:
        from cloudpickle import Pickler
    except ImportError:
        Pickler = pickle.Pickler
    stream = io.BytesIO()
    pickler = Pickler(stream, protocol=_PICKLE_PROTOCOL)
    if classes:
        call = _CodecCall(classes, ())

        def persistent_id(obj):
            if isinstance(obj, type) and (every_class or _defined_by_source(obj)):
                return _class_name(obj, call)
            return None

        pickler.persistent_id = persistent_id
    pickler.dump(value)
    return stream.getvalue()


def pickle_loads(data, *, classes=_NO_CLASSES):
    """Unpickle what `pickle_dumps` made; a key is looked up in `classes` only."""
    import io
    import pickle

    def persistent_load(name):
        kind = resolve_class(classes, name) if type(name) is str else None
        if kind is None:
            raise pickle.UnpicklingError(f"class {name!r} is not part of the task's program")
        return kind

    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = persistent_load
    return unpickler.load()


# ---------------------------------------------------------------------- envelopes (files)


# The JSON text of an envelope up to its one varying field, as `encode` writes the dict:
# an input of positional arguments only, an output of a value and no prints. Written and
# read as text around that field (`_encode_within`), they are most envelopes.
_ARGS_ONLY_INPUT = f'{{"format":"{INPUT_FORMAT}","args":'
_QUIET_OUTPUT = f'{{"format":"{OUTPUT_FORMAT}","ok":true,"stdout":"","stderr":"","value":'


def _decode_envelope(
    data, classes, pickle_allowed: bool, max_bytes: int | None = None, head: str = ""
) -> tuple[bool, object]:
    """`(True, the varying field)` for an envelope that is `head` and that field, else
    `(False, the whole envelope)`; pickles only with `pickle_allowed`."""
    if codec_of(data) != CODEC_PICKLE:
        return _decode_within(data, classes, max_bytes, head)
    if not pickle_allowed:
        raise ContractError("a pickled envelope was refused: only the safe codec is decoded here")
    if max_bytes is not None and len(data) > max_bytes:
        raise ContractError(f"encoded value is {len(data)} bytes, over the {max_bytes} limit")
    try:
        return False, pickle_loads(data, classes=classes)
    except Exception as error:  # what a trusted worker pickled names a module we lack...
        raise ContractError(f"cannot unpickle: {type(error).__name__}: {error}") from None


class Arguments(tuple):
    """A task's positional arguments, with its keyword arguments as `kwargs`.

    A tuple, so that code written for positional arguments only keeps working; `call_task`
    passes the keywords on.
    """

    kwargs: dict = {}


def encode_input(
    args: tuple,
    data_zip: str | None = None,
    kwargs: dict | None = None,
    *,
    classes=_NO_CLASSES,
    codec: str = CODEC_JSON,
) -> bytes:
    """The input file of a task: its arguments and optional data archive name.

    Keyword arguments and the archive name are written only when there are some: 100,000
    queued inputs are held by the master. `classes` is the program's allow-list (see
    `encode`); `codec="pickle"` is for the long-lived workers of trusted engines only (see
    `pickle_dumps`).
    """
    if data_zip is None and not kwargs and codec != CODEC_PICKLE:
        return _encode_within(tuple(args), classes, _ARGS_ONLY_INPUT)
    envelope = {"format": INPUT_FORMAT, "args": tuple(args)}
    if data_zip is not None:
        envelope["data_zip"] = data_zip
    if kwargs:
        envelope["kwargs"] = dict(kwargs)
    if codec == CODEC_PICKLE:
        return pickle_dumps(envelope, classes=classes, every_class=True)
    return encode(envelope, classes=classes)


def decode_input(
    data: bytes, *, classes=_NO_CLASSES, allow_pickle: bool = False
) -> tuple[Arguments, str | None]:
    """The arguments and data archive name of a task input.

    `classes` is the task code's namespace. Only a long-lived worker of a trusted engine
    passes `allow_pickle`; a task script never does, since it may run on a volunteer's
    machine (or a signing worker) where a pickle would be code nobody checked.
    """
    args_only, envelope = _decode_envelope(data, classes, allow_pickle, head=_ARGS_ONLY_INPUT)
    if args_only:
        if not isinstance(envelope, tuple):
            raise ContractError("task input has malformed args or data_zip")
        return Arguments(envelope), None
    if not isinstance(envelope, dict) or envelope.get("format") != INPUT_FORMAT:
        raise ContractError(f"not a PyMW task input (expected format {INPUT_FORMAT})")
    args, data_zip = envelope.get("args"), envelope.get("data_zip")
    kwargs = envelope.get("kwargs", {})
    if not isinstance(args, tuple) or not (data_zip is None or isinstance(data_zip, str)):
        raise ContractError("task input has malformed args or data_zip")
    if not isinstance(kwargs, dict) or not all(type(key) is str for key in kwargs):
        raise ContractError("task input has malformed kwargs")
    arguments = Arguments(args)
    if kwargs:
        arguments.kwargs = kwargs
    return arguments, data_zip


class Outcome:
    """What a task produced: built by `call_task` on the worker, by `decode_output` on the
    master.

    A failure carries the exception's type name (as the task's program or builtins name
    it), message, args (when they can travel), formatted traceback, and the worker's host
    and pid; with the pickle codec also the exception itself. `encoded` is the output
    envelope `call_task` made.
    """

    __slots__ = (
        "encoded",
        "error_args",
        "error_message",
        "error_type",
        "exception",
        "host",
        "ok",
        "pid",
        "stderr",
        "stdout",
        "traceback",
        "value",
    )

    def __init__(
        self,
        ok,
        value=None,
        stdout="",
        stderr="",
        error_type=None,
        error_message=None,
        traceback=None,
        *,
        error_args=None,
        exception=None,
        host=None,
        pid=None,
    ):
        self.ok = ok
        self.value = value
        self.stdout = stdout
        self.stderr = stderr
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        self.error_args = error_args
        self.exception = exception
        self.host = host
        self.pid = pid
        self.encoded = b""

    def to_envelope(self, *, with_exception: bool = False) -> dict:
        envelope = {
            "format": OUTPUT_FORMAT,
            "ok": self.ok,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }
        if self.ok:
            envelope["value"] = self.value
            return envelope
        error = {
            "type": self.error_type,
            "message": self.error_message,
            "traceback": self.traceback,
        }
        optional = {"args": self.error_args, "host": self.host, "pid": self.pid}
        if with_exception:
            optional["exception"] = self.exception
        error.update((key, value) for key, value in optional.items() if value is not None)
        envelope["error"] = error
        return envelope

    def to_bytes(self, codec: str = CODEC_JSON, classes=_NO_CLASSES) -> bytes:
        """The output envelope, encoded. A value that cannot travel becomes the task's
        error; error args that cannot travel are dropped (message and traceback stay)."""
        try:
            return self._encoded(codec, classes)
        # The value cannot travel (a pickled __reduce__ may even raise SystemExit): that
        # is the task's error.
        except (Exception, SystemExit) as problem:
            if self.ok:
                self._fail(problem, classes)
        try:
            return self._encoded(codec, classes)
        except Exception:  # the error's own args cannot travel
            self.error_args = self.exception = None
            return self._encoded(codec, classes)

    def _encoded(self, codec, classes) -> bytes:
        if codec == CODEC_PICKLE:
            return pickle_dumps(self.to_envelope(with_exception=True), classes=classes)
        if self.ok and not self.stdout and not self.stderr:
            return _encode_within(self.value, classes, _QUIET_OUTPUT)
        return encode(self.to_envelope(), classes=classes)

    def _fail(self, error: BaseException, classes) -> None:
        """Turn this outcome into the failure `error`, keeping the captured streams."""
        import traceback

        try:
            message = str(error)
        except Exception:  # a task's exception whose __str__ fails
            message = f"<{type(error).__name__} with an unprintable message>"
        self.ok, self.value = False, None
        self.error_type = _exception_name(type(error), classes)
        self.error_message = message
        frames = error.__traceback__
        if frames is not None and frames.tb_frame.f_code is call_task.__code__:
            frames = frames.tb_next  # the task's own frames first, as ProcessPoolExecutor
        self.traceback = "".join(traceback.format_exception(type(error), error, frames))
        self.error_args, self.exception = _constructor_args(error), error
        self.host, self.pid = _host_name(), os.getpid()

    def __repr__(self):
        state = "ok" if self.ok else f"error {self.error_type}"
        return f"<Outcome {state}>"


def _constructor_args(error: BaseException) -> tuple:
    """What rebuilds `error` when passed to its class, as pickle would pass them: its args,
    and for some builtins more (OSError's filename)."""
    try:
        reduced = error.__reduce__()
    except Exception:  # a task's exception with a broken __reduce__
        reduced = None
    if isinstance(reduced, tuple) and len(reduced) > 1 and type(reduced[1]) is tuple:
        return reduced[1]
    return tuple(error.args)


def _exception_name(kind, classes) -> str:
    """How the master will look the exception's class up: a builtin by its name, a class of
    the task's program by its key; any other by its dotted name (it becomes a TaskError)."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    name = _class_name(kind, _CodecCall(classes, ()))
    return name if name is not None else f"{kind.__module__}.{kind.__qualname__}"


def _host_name() -> str:
    try:
        return os.uname().nodename
    except AttributeError:  # Windows
        return os.environ.get("COMPUTERNAME", "")


def decode_output(
    data: bytes, *, classes=_NO_CLASSES, codec: str = CODEC_JSON, max_bytes: int | None = None
) -> Outcome:
    """Decode a task's output envelope; anything malformed raises ContractError.

    `classes` is the program's allow-list. A pickled output is unpickled only when the
    caller, the master of a trusted engine, asks for `codec="pickle"`: the output's own
    bytes never decide it.
    """
    try:
        quiet, envelope = _decode_envelope(
            data, classes, codec == CODEC_PICKLE, max_bytes, _QUIET_OUTPUT
        )
    except SystemExit as error:  # a pickle that exits as it loads: its output's fault only
        raise ContractError(f"cannot unpickle: SystemExit: {error}") from None
    if quiet:
        return Outcome(True, envelope)
    if not isinstance(envelope, dict) or envelope.get("format") != OUTPUT_FORMAT:
        raise ContractError(f"not a PyMW task output (expected format {OUTPUT_FORMAT})")
    stdout, stderr = envelope.get("stdout", ""), envelope.get("stderr", "")
    if not isinstance(stdout, str) or not isinstance(stderr, str):
        raise ContractError("task output has malformed captured streams")
    if envelope.get("ok") is True:
        return Outcome(True, envelope.get("value"), stdout, stderr)
    error = envelope.get("error")
    if not isinstance(error, dict) or not all(
        isinstance(error.get(key), str) for key in ("type", "message", "traceback")
    ):
        raise ContractError("task output has a malformed error record")
    args, host, pid = error.get("args"), error.get("host"), error.get("pid")
    exception = error.get("exception") if codec == CODEC_PICKLE else None
    if not (
        (args is None or type(args) is tuple)
        and (host is None or type(host) is str)
        and (pid is None or type(pid) is int)
        and (exception is None or isinstance(exception, BaseException))
    ):
        raise ContractError("task output has a malformed error record")
    return Outcome(
        False,
        None,
        stdout,
        stderr,
        error["type"],
        error["message"],
        error["traceback"],
        error_args=args,
        exception=exception,
        host=host,
        pid=pid,
    )


# ------------------------------------------------------------------- command line (argv)


class Invocation:
    """The files of one task as a worker receives them on its command line."""

    __slots__ = ("input", "output", "script", "stdlib_zip")

    def __init__(self, script, input, output, stdlib_zip=None):
        self.script, self.input, self.output, self.stdlib_zip = script, input, output, stdlib_zip


def worker_command(worker: list, script, input_path, output_path, stdlib_zip=None) -> list:
    """The command line that runs one task. `worker` is the interpreter (or custom app) argv."""
    files = [script, input_path, output_path]
    if stdlib_zip is not None:
        files.insert(1, stdlib_zip)
    return [*worker, *(os.fspath(f) for f in files)]


class TaskFiles:
    """The names of a task's three files in its folder, and the command that runs it."""

    __slots__ = ("input", "output", "script")

    def __init__(self, script, input, output):
        self.script, self.input, self.output = script, input, output

    def command(self, worker: list, stdlib_zip=None) -> list:
        """`<worker> <script> [stdlib zip] <input> <output>`, run in the task's folder."""
        return worker_command(worker, self.script, self.input, self.output, stdlib_zip)


# A task folder on a machine PyMW runs tasks on itself (local processes, MPI ranks,
# HTCondor jobs), with the task process's stderr beside them.
LOCAL_FILES = TaskFiles("pymw_task.py", "input", "output")
STDERR_FILE = "stderr.txt"
# The same files' logical (open) names in a BOINC slot. The output's is also in the
# results layout BOINC's assimilators share: results/<batch>/<wu name>__file_out.
BOINC_FILES = TaskFiles("pymw_task.py", "in", "out")


def parse_worker_args(args: list, *, with_stdlib_zip: bool) -> Invocation:
    """Parse the files named after the interpreter or worker app, the script first.

    Raises ContractError with the usage when the count is wrong.
    """
    expected = 4 if with_stdlib_zip else 3
    if len(args) != expected:
        usage = (
            "<script> <stdlib zip> <input> <output>"
            if with_stdlib_zip
            else ("<script> <input> <output>")
        )
        raise ContractError(f"expected {usage}, got {len(args)} argument(s)")
    if with_stdlib_zip:
        script, stdlib_zip, input_path, output_path = args
        return Invocation(script, input_path, output_path, stdlib_zip)
    return Invocation(*args)


def resolve_logical_name(name: str) -> str:
    """Follow a BOINC `<soft_link>` file, as boinc_resolve_filename does.

    In a BOINC slot the files named on the command line are small files holding
    `<soft_link>../../projects/<dir>/<physical name></soft_link>`. A plain interpreter has no
    BOINC library, so the script follows them itself; elsewhere the name is returned as is.
    """
    try:
        with open(name, "rb") as handle:
            head = handle.read(512)
    except OSError:
        return name
    if not head.startswith(b"<soft_link>"):
        return name
    end = head.find(b"</soft_link>")
    if end < 0:
        return name
    return head[len(b"<soft_link>") : end].decode("utf-8").strip()


# ------------------------------------------------------------------------ data archives


def _is_unsafe_member(name: str) -> bool:
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return True
    return ".." in normalized.split("/")


def safe_extract(
    archive, destination, *, max_bytes=MAX_UNZIPPED_BYTES, max_members=MAX_ARCHIVE_MEMBERS
) -> list:
    """Unpack a zip into `destination`, refusing anything that could escape, explode or break.

    Refused with UnsafeArchiveError, a ContractError (a task exits EXIT_BAD_INPUT):
    absolute paths, drive letters, `..` components, symlinks, entries that would reach
    outside `destination` through a symlink in it or replace a folder by a file (or back),
    more than `max_members` entries, more than `max_bytes` unpacked (counted while writing,
    not trusted from the header), and every malformed archive: bad CRC, encrypted, unknown
    compression method, truncated, corrupt headers or data. The archive is unpacked into a
    hidden folder inside `destination` and renamed into place only once all of it was read,
    so an archive refused part-way leaves nothing behind. Deflate64 archives, which Windows
    Explorer writes for large files, are read when the `zipfile-deflate64` package is
    installed. Returns the names.
    """
    import shutil
    import tempfile
    import zipfile

    try:
        import zipfile_deflate64  # noqa: F401  (registers Deflate64 with zipfile)
    except ImportError:
        pass

    os.makedirs(destination, exist_ok=True)
    root = os.path.realpath(destination)
    staging = tempfile.mkdtemp(prefix=".pymw-unzip-", dir=root)
    try:
        try:
            with zipfile.ZipFile(archive) as archive_file:
                names = _unpack_into(archive_file, root, staging, max_bytes, max_members)
        except UnsafeArchiveError:
            raise
        # zipfile and its decompressors (zlib, bz2, lzma, Deflate64) each raise their own
        # types for hostile bytes (BadZipFile, RuntimeError for encryption,
        # NotImplementedError, EOFError, zlib.error, LZMAError, OSError, ValueError, ...):
        # whatever reading an untrusted archive raises is the archive's fault.
        except Exception as error:
            raise UnsafeArchiveError(
                f"{os.fspath(archive)} is not a readable zip: {type(error).__name__}: {error}"
            ) from error
        for source, target in _moves_into_place(staging, root):
            os.replace(source, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return names


def _unpack_into(archive_file, root: str, staging: str, max_bytes: int, max_members: int):
    """Check every entry of `archive_file` against `root`, then unpack it into `staging`."""
    import stat

    members = archive_file.infolist()
    if len(members) > max_members:
        raise UnsafeArchiveError(f"archive has {len(members)} entries, over {max_members}")
    for member in members:
        if _is_unsafe_member(member.filename):
            raise UnsafeArchiveError(f"archive entry {member.filename!r} escapes its folder")
        if stat.S_ISLNK(member.external_attr >> 16):
            raise UnsafeArchiveError(f"archive entry {member.filename!r} is a symlink")
        final = os.path.realpath(os.path.join(root, member.filename))
        if os.path.commonpath([root, final]) != root:
            raise UnsafeArchiveError(f"archive entry {member.filename!r} escapes its folder")
    written = 0
    for member in members:
        target = os.path.join(staging, member.filename)
        if member.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive_file.open(member) as source, open(target, "wb") as sink:
            while chunk := source.read(1 << 16):
                written += len(chunk)
                if written > max_bytes:
                    raise UnsafeArchiveError(f"archive unpacks to over {max_bytes} bytes")
                sink.write(chunk)
    return [member.filename for member in members]


def _moves_into_place(staging: str, root: str) -> list:
    """The renames that merge the tree unpacked in `staging` into `root`, all checked
    before any is made: a folder `root` lacks moves whole, one it has is merged into, a
    file replaces a file; replacing a folder by a file, or a file or symlink by a folder,
    is refused."""
    moves = []
    for folder, subfolders, files in os.walk(staging):
        relative = os.path.relpath(folder, staging)
        for name in list(subfolders):
            entry = os.path.normpath(os.path.join(relative, name))
            target = os.path.join(root, entry)
            if not os.path.lexists(target):
                moves.append((os.path.join(folder, name), target))
                subfolders.remove(name)  # moved whole: nothing to walk inside
            elif os.path.islink(target) or not os.path.isdir(target):
                raise UnsafeArchiveError(f"archive folder {entry!r} would replace a file")
        for name in files:
            entry = os.path.normpath(os.path.join(relative, name))
            target = os.path.join(root, entry)
            if os.path.isdir(target) and not os.path.islink(target):
                raise UnsafeArchiveError(f"archive entry {entry!r} would replace a folder")
            moves.append((os.path.join(folder, name), target))
    return moves


# ------------------------------------------------------------------ running a task (worker)


class _BoundedCapture:
    """A text stream that keeps the first MAX_CAPTURED_CHARS characters written to it.

    Not an io.TextIOBase subclass, though registered as one: every task call makes two,
    and an io object's creation and finalisation cost more than a short task's call. It
    has the text stream methods code writing to sys.stdout uses."""

    __slots__ = ("_parts", "_size", "truncated")
    encoding, errors, newlines, closed = "utf-8", "strict", None, False

    def __init__(self):
        self._parts, self._size, self.truncated = [], 0, False

    def write(self, text):
        if type(text) is not str:
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        room = MAX_CAPTURED_CHARS - self._size
        if len(text) > room:
            self.truncated = True
        if room > 0:
            self._parts.append(text[:room])
            self._size += min(len(text), room)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def close(self):
        pass  # the capture ends with the task's call

    def fileno(self):
        raise io.UnsupportedOperation("a task's captured output has no file descriptor")

    def detach(self):
        raise io.UnsupportedOperation("a task's captured output has no buffer to detach")

    def isatty(self):
        return False

    def writable(self):
        return True

    def readable(self):
        return False

    def seekable(self):
        return False

    def getvalue(self):
        value = "".join(self._parts)
        return value + "\n[... output cut by PyMW]\n" if self.truncated else value


io.TextIOBase.register(_BoundedCapture)


def task_namespace(function) -> dict:
    """The namespace a task function's code runs in (its module's globals): on a worker,
    the classes it may decode into and encode. Empty for a builtin."""
    return getattr(function, "__globals__", _NO_CLASSES)


def call_task(
    function,
    args: tuple = (),
    kwargs: dict | None = None,
    *,
    codec: str | None = CODEC_JSON,
    classes=None,
) -> Outcome:
    """Call `function(*args, **kwargs)` with stdout/stderr captured and encode the output
    envelope with `codec` into `outcome.encoded`; never raises for task errors. Without
    `kwargs`, those `args` carries (an `Arguments`) are used. `codec=None` encodes nothing:
    for a call made in the master's own process (the grid simulator), whose outcome is
    handed over as it is.

    `classes` defaults to the namespace the function was defined in, the task's code:
    what the worker may encode as program classes, and how its exceptions are named.
    """
    if kwargs is None:
        kwargs = getattr(args, "kwargs", {})
    if classes is None:
        classes = task_namespace(function)
    stdout, stderr = _BoundedCapture(), _BoundedCapture()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    outcome = Outcome(True)
    try:
        outcome.value = function(*args, **kwargs) if kwargs else function(*args)
    except (Exception, SystemExit) as error:  # the task's error is data to report
        outcome._fail(error, classes)
    finally:
        sys.stdout, sys.stderr = saved
    outcome.stdout, outcome.stderr = stdout.getvalue(), stderr.getvalue()
    if codec is not None:
        outcome.encoded = outcome.to_bytes(codec, classes)
    return outcome


def prepare_input(
    input_bytes: bytes, input_dir: str, *, resolve=resolve_logical_name, classes=_NO_CLASSES
) -> tuple:
    """Decode a task input and unpack its data archive into the working directory."""
    args, data_zip = decode_input(input_bytes, classes=classes)
    if data_zip is not None:
        archive = resolve(os.path.join(input_dir, data_zip) if input_dir else data_zip)
        if not os.path.exists(archive):
            archive = resolve(data_zip)
        safe_extract(archive, os.getcwd())
    return args


def write_atomically(path: str, data: bytes) -> None:
    """Write a file so that a reader never sees half of it (rename is atomic)."""
    temporary = f"{path}.part"
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)


def task_main(function, argv=None) -> int:
    """The body of a generated task script. `argv` is `[<script>, <input>, <output>]`
    (default `sys.argv`). Returns the exit status.

    The output is written for failures too, so local engines get the traceback from it; the
    traceback also goes to stderr, which is what BOINC reports for an errored result.
    """
    argv = sys.argv if argv is None else argv
    try:
        invocation = parse_worker_args(argv, with_stdlib_zip=False)
    except ContractError as error:
        print(f"pymw task: {error}", file=sys.stderr)
        return EXIT_BAD_INVOCATION
    input_path = resolve_logical_name(invocation.input)
    output_path = resolve_logical_name(invocation.output)
    try:
        with open(input_path, "rb") as handle:
            args = prepare_input(
                handle.read(), os.path.dirname(invocation.input), classes=task_namespace(function)
            )
    except (OSError, ContractError) as error:
        print(f"pymw task: cannot read input {invocation.input}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    outcome = call_task(function, args)
    write_atomically(output_path, outcome.encoded)
    if outcome.ok:
        return EXIT_OK
    sys.stderr.write(outcome.traceback)
    # BOINC uploads no output for a result that exited non-zero, so in a BOINC slot (it
    # holds init_data.xml) the task's error travels as its output, traceback included.
    return EXIT_OK if os.path.exists(BOINC_INIT_DATA) else EXIT_TASK_FAILED
