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
import struct
from dataclasses import dataclass
from typing import BinaryIO

_PREFIX = struct.Struct(">IQ")
# A header carries a program's source the first time a worker needs it; more than this is
# not a PyMW frame.
MAX_HEADER_BYTES = 64 << 20
# How much of a refused payload is read (and dropped) at a time.
_SKIP_CHUNK = 1 << 20
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_DECODER = json.JSONDecoder()


class FrameError(ValueError):
    """Bytes that are not a frame: a truncated message or an impossible header."""


@dataclass(slots=True)
class Frame:
    """One message. `payload` is None when it was over the reader's cap and skipped."""

    header: dict
    payload: bytes | None
    payload_size: int


def pieces(header: dict, payload: bytes = b"") -> list[bytes]:
    """The frame as [prefix + header, payload]: written one after the other, so a large
    payload is never copied to join it to its header."""
    head = _ENCODER.encode(header).encode("utf-8")
    return [_PREFIX.pack(len(head), len(payload)) + head, payload]


def write(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    stream.writelines(pieces(header, payload))
    stream.flush()


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
        header = _DECODER.decode(bytes(head).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise FrameError(f"unreadable frame header: {error}") from None
    if not isinstance(header, dict):
        raise FrameError("a frame header must be a JSON object")
    return header


def _skip(stream: BinaryIO, size: int) -> bool:
    while size > 0:
        chunk = stream.read(min(size, _SKIP_CHUNK))
        if not chunk:
            return False
        size -= len(chunk)
    return True
