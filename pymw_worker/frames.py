"""Frames: how one record travels on a pipe, or as one MPI message.

    ┌──────────────┬───────────────┬────────────────────┬───────────────────────────┐
    │ header size  │ payload size  │ header: JSON object│ payload: raw bytes        │
    │ uint32 (BE)  │ uint64 (BE)   │ (UTF-8)            │ (a task's input, output…) │
    └──────────────┴───────────────┴────────────────────┴───────────────────────────┘

The header holds a record's small fields; bulk data (a task's input or output, a data
archive) is the payload and travels as the raw bytes it is, never inside the JSON. Both
sizes come first, so a reader with a cap refuses an oversized payload before reading any
of it, and skips it to stay in step with the stream: memory stays bounded whatever the
other end sends.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

_PREFIX = struct.Struct(">IQ")
# A header carries a program's source the first time a worker needs it; more than this is
# not a PyMW frame.
MAX_HEADER_BYTES = 64 << 20
# How much of a refused payload is read (and dropped) at a time.
_SKIP_CHUNK = 1 << 20
# A payload at least this big, not all arrived yet, is read straight into a buffer of its
# size rather than grown in the read buffer (which would copy it at every piece).
_GATHER_BYTES = 1 << 16
# The most pieces one writev takes (POSIX guarantees 16; Linux takes 1024).
_IOV_MAX = 1024
# The most one read of a pipe takes: a burst of small frames (a map's replies, about a
# hundred) still comes in one read, and of a large payload only this much passes through
# the read buffer; the rest is read straight into the payload's own buffer. (Reading all
# that a generic interface's 1 MiB pipe holds copied a 1 MB payload once more, into fresh
# memory: row e of bench_master ran 15% slower.)
_READ_BYTES = _GATHER_BYTES
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()


def _header_encoder() -> Callable[[dict], str]:
    """`_ENCODER.encode`, with its C encoder made once: `encode` makes a new one for every
    call, which costs more than encoding a header. (The pure-Python json has none.)"""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return _ENCODER.encode
    encode = make(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    return lambda header: "".join(encode(header, 0))


_encode_header = _header_encoder()


class FrameError(ValueError):
    """Bytes that are not a frame: a truncated message or an impossible header."""


@dataclass(slots=True)
class Frame:
    """One message. `payload` is None when it was over the reader's cap and skipped; a
    large one from a `FrameReader` is the bytearray the pipe was read into."""

    header: dict
    payload: bytes | bytearray | None
    payload_size: int


def pieces(header: dict, payload: bytes = b"") -> list[bytes]:
    """The frame as [prefix + header, payload]: written one after the other, so a large
    payload is never copied to join it to its header."""
    head = _encode_header(header).encode("utf-8")
    return [_PREFIX.pack(len(head), len(payload)) + head, payload]


def write(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stream.writelines(pieces(header, payload))
    stream.flush()


def write_all(fd: int, pieces: list[bytes]) -> None:
    """Write `pieces` (a frame's, or several frames') to a pipe in as few system calls as
    it takes, never joining them: a large payload goes out as it is, uncopied."""
    while pieces:
        _write_once(fd, pieces)


def write_some(fd: int, pieces: list[bytes]) -> list[bytes]:
    """`write_all` on a non-blocking pipe: what it takes now; returns what is left."""
    try:
        while pieces:
            _write_once(fd, pieces)
    except BlockingIOError:
        pass
    return pieces


def _write_once(fd: int, pieces: list[bytes]) -> None:
    """One writev of `pieces`, dropping from them what it wrote."""
    written = os.writev(fd, pieces[:_IOV_MAX])
    while pieces and written >= len(pieces[0]):
        written -= len(pieces.pop(0))
    if written:
        pieces[0] = memoryview(pieces[0])[written:]


def read(stream: BinaryIO, max_payload: int | None = None) -> Frame | None:
    """The next frame, or None at the end of the stream (a truncated frame included).

    A payload over `max_payload` bytes is read past in chunks, never held: the frame
    comes back with `payload=None` and its declared size.
    """
    prefix = stream.read(_PREFIX.size)
    if len(prefix) < _PREFIX.size:
        return None
    head_size, payload_size = _PREFIX.unpack(prefix)
    if head_size > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {head_size} bytes, over {MAX_HEADER_BYTES}")
    head = stream.read(head_size)
    if len(head) < head_size:
        return None
    header = _header(head)
    if max_payload is not None and payload_size > max_payload:
        return Frame(header, None, payload_size) if _skip(stream, payload_size) else None
    payload = stream.read(payload_size) if payload_size else b""
    if len(payload) < payload_size:
        return None
    return Frame(header, payload, payload_size)


class FrameReader:
    """Frames from bytes that arrive in pieces of any size (whatever one read of a pipe
    returned): a reader takes every frame a piece completes, so a burst of frames costs
    one read and one wakeup, not several of each.

    A payload over `max_payload` bytes is dropped as it arrives, never held: its frame
    comes back with `payload=None` and its declared size, as `read` does.
    """

    def __init__(self, fd: int | None = None, max_payload: int | None = None) -> None:
        self.fd = fd
        self.max_payload = max_payload
        self._space = bytearray(_READ_BYTES if fd is not None else 0)  # what a read fills
        self._rest = bytearray()  # the start of a frame not all arrived yet
        self._skip = 0  # bytes of a refused payload still to drop
        # A large payload on its way: its frame's header, the payload, and how much of it
        # has arrived. The pipe is read straight into it.
        self._gathering: tuple[dict, bytearray] | None = None
        self._filled = 0

    def read(self, max_payload: int | None = None) -> list[Frame] | None:
        """Wait for bytes on the reader's file descriptor and return the frames they
        complete (maybe none); None at the end of the stream."""
        self.max_payload = max_payload
        if self._gathering is not None:
            with memoryview(self._gathering[1]) as payload:
                size = os.readv(self.fd, [payload[self._filled :]])
            if not size:
                return None
            self._filled += size
            done: list[Frame] = []
            self._complete(done)
            return done
        size = os.readv(self.fd, [self._space])
        if not size:
            return None
        with memoryview(self._space) as space:
            return self.feed(space[:size])

    def feed(self, data: bytes | memoryview) -> list[Frame]:
        """The frames `data` completes; raises FrameError for bytes that are no frame."""
        done: list[Frame] = []
        view = memoryview(data)
        if self._skip:
            dropped = min(self._skip, len(view))
            self._skip -= dropped
            view = view[dropped:]
        if self._gathering is not None:
            view = self._gather(view, done)
        if self._rest:
            self._rest += view
            with memoryview(self._rest) as rest:
                used = self._frames(rest, done)
            del self._rest[:used]
        elif view:
            used = self._frames(view, done)
            self._rest += view[used:]
        return done

    def _gather(self, view: memoryview, done: list[Frame]) -> memoryview:
        payload = self._gathering[1]
        taken = min(len(payload) - self._filled, len(view))
        payload[self._filled : self._filled + taken] = view[:taken]
        self._filled += taken
        self._complete(done)
        return view[taken:]

    def _complete(self, done: list[Frame]) -> None:
        header, payload = self._gathering
        if self._filled == len(payload):
            done.append(Frame(header, payload, len(payload)))
            self._gathering = None

    def _frames(self, view: memoryview, done: list[Frame]) -> int:
        """Take the whole frames at the start of `view`; returns the bytes used (a
        large or refused payload's first part included)."""
        start, size = 0, len(view)
        while size - start >= _PREFIX.size:
            head_size, payload_size = _PREFIX.unpack_from(view, start)
            if head_size > MAX_HEADER_BYTES:
                raise FrameError(f"frame header of {head_size} bytes, over {MAX_HEADER_BYTES}")
            end_of_head = start + _PREFIX.size + head_size
            if size < end_of_head:
                break
            end, have = end_of_head + payload_size, size - end_of_head
            if self.max_payload is not None and payload_size > self.max_payload:
                header = _header(view[start + _PREFIX.size : end_of_head])
                done.append(Frame(header, None, payload_size))
                self._skip = payload_size - min(have, payload_size)
                start = min(end, size)
            elif have >= payload_size:
                header = _header(view[start + _PREFIX.size : end_of_head])
                done.append(Frame(header, view[end_of_head:end].tobytes(), payload_size))
                start = end
            elif payload_size >= _GATHER_BYTES:
                payload = bytearray(payload_size)
                payload[:have] = view[end_of_head:]
                self._gathering = (_header(view[start + _PREFIX.size : end_of_head]), payload)
                self._filled = have
                return size
            else:
                break
        return start


def parse(message: bytes | bytearray | memoryview) -> Frame:
    """One frame from a whole message (MPI), which must hold exactly one."""
    view = memoryview(message)
    if len(view) < _PREFIX.size:
        raise FrameError("truncated PyMW message")
    head_size, payload_size = _PREFIX.unpack(view[: _PREFIX.size])
    end_of_head = _PREFIX.size + head_size
    if end_of_head + payload_size != len(view):
        raise FrameError("PyMW message sizes do not add up")
    header = _header(view[_PREFIX.size : end_of_head])
    return Frame(header, bytes(view[end_of_head:]), payload_size)


def _header(head: bytes | memoryview) -> dict:
    try:
        text = str(head, "utf-8")
        # The decoder's C scanner itself: decode() adds two regex passes for whitespace
        # no header has, which cost as much as the parse.
        header, end = _DECODER.scan_once(text, 0)
    except (UnicodeDecodeError, ValueError) as error:
        raise FrameError(f"unreadable frame header: {error}") from None
    except StopIteration:
        raise FrameError("unreadable frame header: no JSON value") from None
    if end != len(text) or not isinstance(header, dict):
        raise FrameError("a frame header must be one JSON object")
    return header


def _skip(stream: BinaryIO, size: int) -> bool:
    while size > 0:
        chunk = stream.read(min(size, _SKIP_CHUNK))
        if not chunk:
            return False
        size -= len(chunk)
    return True
