"""The wire to long-lived workers: frames, records, and the size cap on reading."""

import io
import os

import pytest

from pymw_worker import frames, records


class CountingStream(io.BytesIO):
    """A stream that remembers the largest read asked of it."""

    largest_read = 0

    def read(self, size=-1):
        self.largest_read = max(self.largest_read, size)
        return super().read(size)


def test_a_job_with_its_archive_round_trips_as_raw_bytes():
    job = records.Job(
        7, "ab12", "f", b"\x00input", source="def f(): pass", data_zip="d.zip", archive=b"PK\x03"
    )
    message = records.to_bytes(job)
    assert b"\x00input" in message and b"PK\x03" in message  # raw, not base64 in JSON
    assert records.decode(frames.parse(message)) == job


def test_a_stream_of_records_reads_back_in_order():
    sent = [
        records.Reply(1, b"out", 0, 0.5),
        records.Recall((2, 3)),
        records.Reply(2, status=records.RELEASED),
    ]
    stream = io.BytesIO(b"".join(records.to_bytes(record) for record in sent))
    received = []
    while (frame := frames.read(stream)) is not None:
        received.append(records.decode(frame))
    assert received == sent


def test_a_payload_over_the_cap_is_skipped_unread_and_the_next_frame_still_reads():
    big = records.Reply(1, b"x" * 5_000_000)
    small = records.Reply(2, b"ok")
    stream = CountingStream(records.to_bytes(big) + records.to_bytes(small))
    first = records.Reply.from_frame(frames.read(stream, max_payload=1000))
    assert first.output is None and first.oversize == 5_000_000
    assert stream.largest_read <= 1 << 20  # read past in chunks, never held whole
    assert records.Reply.from_frame(frames.read(stream, max_payload=1000)) == small


def test_a_truncated_frame_is_the_end_of_the_stream():
    message = records.to_bytes(records.Reply(1, b"abcdef"))
    assert frames.read(io.BytesIO(message[:-2])) is None
    with pytest.raises(frames.FrameError):
        frames.parse(message[:-2])


@pytest.mark.parametrize(
    "header",
    [{"kind": "nonsense"}, {"kind": "job"}, []],
    ids=["unknown kind", "missing fields", "not an object"],
)
def test_a_frame_holding_no_known_record_is_refused(header):
    with pytest.raises((records.RecordError, frames.FrameError)):
        records.decode(frames.parse(b"".join(frames.pieces(header))))


def _pieces(data: bytes, sizes: list[int]):
    """`data` cut into pieces of the given sizes, cycling: as reads of a pipe return it."""
    start, turn = 0, 0
    while start < len(data):
        size = sizes[turn % len(sizes)]
        yield data[start : start + size]
        start, turn = start + size, turn + 1


@pytest.mark.parametrize("sizes", [[1], [3, 1000], [70_000], [1 << 20]], ids=str)
def test_a_reader_fed_pieces_of_any_size_gives_each_frame_whole_and_in_order(sizes):
    sent = [records.Reply(n, bytes([n]) * size, 0) for n, size in enumerate([0, 5, 200_000, 9])]
    sent.append(records.Recall((1, 2)))
    reader = frames.FrameReader()
    received = []
    for piece in _pieces(b"".join(map(records.to_bytes, sent)), sizes):
        received += [records.decode(frame) for frame in reader.feed(piece)]
    assert received == sent


def test_a_reader_drops_a_payload_over_its_cap_as_it_arrives():
    big, small = records.Reply(1, b"x" * 5_000_000), records.Reply(2, b"ok")
    reader = frames.FrameReader(max_payload=1000)
    received = []
    for piece in _pieces(records.to_bytes(big) + records.to_bytes(small), [1 << 16]):
        received += [records.Reply.from_frame(frame) for frame in reader.feed(piece)]
        held = len(reader._rest) + (len(reader._gathering[1]) if reader._gathering else 0)
        assert held <= 1 << 16  # never more than the piece being read
    assert received[0].output is None and received[0].oversize == 5_000_000
    assert received[1:] == [small]


def test_a_reader_reads_frames_from_a_pipe_until_its_end():
    read_end, write_end = os.pipe()
    sent = [records.Reply(n, b"out") for n in range(50)]
    os.write(write_end, b"".join(map(records.to_bytes, sent)))
    os.close(write_end)
    reader, received = frames.FrameReader(read_end), []
    while (frames_read := reader.read()) is not None:
        received += [records.decode(frame) for frame in frames_read]
    os.close(read_end)
    assert received == sent


def test_a_header_with_bytes_after_its_json_object_is_refused():
    header = b'{"kind":"reply","task":1} []'
    message = frames._PREFIX.pack(len(header), 0) + header
    with pytest.raises(frames.FrameError, match="one JSON object"):
        frames.FrameReader().feed(message)
