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

import io
import json
import os
import sys

CONTRACT_VERSION = 1
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

_TAG_TUPLE = "$tuple"
_TAG_DICT = "$dict"
_TAG_BYTES = "$bytes"
_TAG_SET = "$set"
_TAG_FROZENSET = "$frozenset"
_TAG_COMPLEX = "$complex"
_TAGS = frozenset({_TAG_TUPLE, _TAG_DICT, _TAG_BYTES, _TAG_SET, _TAG_FROZENSET, _TAG_COMPLEX})


class ContractError(ValueError):
    """A file or value that does not follow the worker contract."""


class UnsafeArchiveError(ContractError):
    """A data archive that would write outside its directory or grow past its limits."""


# --------------------------------------------------------------------------- result codec


_SCALARS = frozenset({type(None), bool, int, float, str})


def _to_json(value):
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        return [_to_json(item) for item in value]
    if kind is tuple:
        return {_TAG_TUPLE: [_to_json(item) for item in value]}
    if kind is dict:
        # Plain string keys stay a JSON object (fast, readable); anything else is tagged.
        if all(type(key) is str and not key.startswith("$") for key in value):
            return {key: _to_json(item) for key, item in value.items()}
        return {_TAG_DICT: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    return _to_json_other(value)


def _to_json_other(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value  # subclasses such as IntEnum travel as their base value
    for base in (list, tuple, dict):  # subclasses (namedtuple, OrderedDict) as their base
        if isinstance(value, base):
            return _to_json(base(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        import base64

        return {_TAG_BYTES: base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, frozenset):
        return {_TAG_FROZENSET: [_to_json(item) for item in value]}
    if isinstance(value, set):
        return {_TAG_SET: [_to_json(item) for item in value]}
    if isinstance(value, complex):
        return {_TAG_COMPLEX: [value.real, value.imag]}
    raise TypeError(
        f"PyMW's result codec cannot carry a {type(value).__name__}; convert it to plain "
        "data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set)"
    )


def _from_json_object(obj):
    """Rebuild a tagged value; an object without a `$` tag is a dict with string keys."""
    if len(obj) != 1:
        if any(key.startswith("$") for key in obj):
            raise ContractError("an encoded object must have exactly one type tag")
        return obj
    ((tag, payload),) = obj.items()
    if not tag.startswith("$"):
        return obj
    if tag not in _TAGS:
        raise ContractError(f"unknown type tag {tag!r}")
    if tag == _TAG_COMPLEX:
        real, imag = payload
        return complex(float(real), float(imag))
    if tag == _TAG_BYTES:
        import base64

        return base64.b64decode(payload.encode("ascii"), validate=True)
    if not isinstance(payload, list):
        raise ContractError(f"{tag} needs a list")
    if tag == _TAG_TUPLE:
        return tuple(payload)
    if tag == _TAG_DICT:
        return {_hashable(k): v for k, v in payload}
    if tag == _TAG_SET:
        return {_hashable(item) for item in payload}
    return frozenset(_hashable(item) for item in payload)


def _hashable(value):
    # JSON decodes before tags apply, so a tuple key arrives as a tuple, but a list key
    # (which Python could never have produced) must be refused, not crash the master.
    if isinstance(value, (list, dict, set)):
        raise ContractError("an unhashable value was sent as a key or set member")
    return value


# Made once: json.dumps/loads build an encoder or decoder on every call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))
_DECODER = json.JSONDecoder(object_hook=_from_json_object)


def encode(value) -> bytes:
    """Encode plain data as tagged JSON (UTF-8)."""
    return _ENCODER.encode(_to_json(value)).encode("utf-8")


def decode(data: bytes, *, max_bytes: int | None = None):
    """Decode what `encode` made, safely: malformed or hostile input raises ContractError."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ContractError(f"encoded value is {len(data)} bytes, over the {max_bytes} limit")
    try:
        return _DECODER.decode(data.decode("utf-8"))
    except ContractError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise ContractError(f"malformed encoded value: {error}") from None


# ---------------------------------------------------------------------- envelopes (files)


def encode_input(args: tuple, data_zip: str | None = None) -> bytes:
    """The input file of a task: its positional arguments and optional data archive name."""
    return encode({"format": INPUT_FORMAT, "args": tuple(args), "data_zip": data_zip})


def decode_input(data: bytes) -> tuple[tuple, str | None]:
    envelope = decode(data)
    if not isinstance(envelope, dict) or envelope.get("format") != INPUT_FORMAT:
        raise ContractError(f"not a PyMW task input (expected format {INPUT_FORMAT})")
    args, data_zip = envelope.get("args"), envelope.get("data_zip")
    if not isinstance(args, tuple) or not (data_zip is None or isinstance(data_zip, str)):
        raise ContractError("task input has malformed args or data_zip")
    return args, data_zip


class Outcome:
    """What a task produced, as decoded by the master from its output envelope."""

    __slots__ = ("error_message", "error_type", "ok", "stderr", "stdout", "traceback", "value")

    def __init__(
        self,
        ok,
        value=None,
        stdout="",
        stderr="",
        error_type=None,
        error_message=None,
        traceback=None,
    ):
        self.ok = ok
        self.value = value
        self.stdout = stdout
        self.stderr = stderr
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback

    def to_envelope(self) -> dict:
        envelope = {
            "format": OUTPUT_FORMAT,
            "ok": self.ok,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }
        if self.ok:
            envelope["value"] = self.value
        else:
            envelope["error"] = {
                "type": self.error_type,
                "message": self.error_message,
                "traceback": self.traceback,
            }
        return envelope

    def __repr__(self):
        state = "ok" if self.ok else f"error {self.error_type}"
        return f"<Outcome {state}>"


def decode_output(data: bytes, *, max_bytes: int | None = None) -> Outcome:
    """Decode a task's output envelope; anything malformed raises ContractError."""
    envelope = decode(data, max_bytes=max_bytes)
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
    return Outcome(False, None, stdout, stderr, error["type"], error["message"], error["traceback"])


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
    """Unpack a zip into `destination`, refusing anything that could escape or explode.

    Refused: absolute paths, drive letters, `..` components, symlinks, more than
    `max_members` entries, and more than `max_bytes` unpacked (counted while writing, not
    trusted from the header). Deflate64 archives, which Windows Explorer writes for large
    files, are read when the `zipfile-deflate64` package is installed. Returns the names.
    """
    import stat
    import zipfile

    try:
        import zipfile_deflate64  # noqa: F401  (registers Deflate64 with zipfile)
    except ImportError:
        pass

    try:
        archive_file = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as error:
        raise UnsafeArchiveError(f"{os.fspath(archive)} is not a readable zip: {error}") from None
    with archive_file:
        members = archive_file.infolist()
        if len(members) > max_members:
            raise UnsafeArchiveError(f"archive has {len(members)} entries, over {max_members}")
        for member in members:
            if _is_unsafe_member(member.filename):
                raise UnsafeArchiveError(f"archive entry {member.filename!r} escapes its folder")
            if stat.S_ISLNK(member.external_attr >> 16):
                raise UnsafeArchiveError(f"archive entry {member.filename!r} is a symlink")
        root = os.path.realpath(destination)
        written = 0
        for member in members:
            target = os.path.realpath(os.path.join(root, member.filename))
            if os.path.commonpath([root, target]) != root:
                raise UnsafeArchiveError(f"archive entry {member.filename!r} escapes its folder")
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


# ------------------------------------------------------------------ running a task (worker)


class _BoundedCapture(io.TextIOBase):
    """A text stream that keeps the first MAX_CAPTURED_CHARS characters written to it."""

    def __init__(self):
        self._parts, self._size, self.truncated = [], 0, False

    def writable(self):
        return True

    def write(self, text):
        room = MAX_CAPTURED_CHARS - self._size
        if len(text) > room:
            self.truncated = True
        if room > 0:
            self._parts.append(text[:room])
            self._size += min(len(text), room)
        return len(text)

    def getvalue(self):
        value = "".join(self._parts)
        return value + "\n[... output cut by PyMW]\n" if self.truncated else value


def call_task(function, args: tuple) -> Outcome:
    """Call `function(*args)` with stdout/stderr captured; never raises for task errors."""
    stdout, stderr = _BoundedCapture(), _BoundedCapture()
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        value = function(*args)
        _to_json(value)  # fail here, inside the task, if the result cannot travel
    except (Exception, SystemExit) as error:  # the task's error is data to report
        import traceback

        text = "".join(traceback.format_exception(error))
        outcome = Outcome(False, None, "", "", type(error).__name__, str(error), text)
    else:
        outcome = Outcome(True, value)
    finally:
        sys.stdout, sys.stderr = saved
    outcome.stdout, outcome.stderr = stdout.getvalue(), stderr.getvalue()
    return outcome


def prepare_input(input_bytes: bytes, input_dir: str, *, resolve=resolve_logical_name) -> tuple:
    """Decode a task input and unpack its data archive into the working directory."""
    args, data_zip = decode_input(input_bytes)
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
            args = prepare_input(handle.read(), os.path.dirname(invocation.input))
    except (OSError, ContractError) as error:
        print(f"pymw task: cannot read input {invocation.input}: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    outcome = call_task(function, args)
    write_atomically(output_path, encode(outcome.to_envelope()))
    if outcome.ok:
        return EXIT_OK
    sys.stderr.write(outcome.traceback)
    # BOINC uploads no output for a result that exited non-zero, so in a BOINC slot (it
    # holds init_data.xml) the task's error travels as its output, traceback included.
    return EXIT_OK if os.path.exists(BOINC_INIT_DATA) else EXIT_TASK_FAILED
