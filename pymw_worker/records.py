"""The records a master and its long-lived workers exchange, each in one frame.

To a worker: `Job` (run a task, or with `setup=True` the worker's initializer) and
`Recall` (hand back jobs not started yet, so an idle worker can run them). From a worker:
`Reply`, whose `status` says whether the job ran (`DONE`), was handed back unstarted
(`RELEASED`), or was the initializer and failed (`SETUP_FAILED`, after which the worker
exits). A frame's header holds a record's small fields under their names, leaving out
those at their default; bulk bytes are its payload.

Records are made for every task, twice, so they are plain slotted dataclasses (a frozen
one pays for each field on creation); nothing changes one once it is made.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyboinc.contract import CODEC_JSON

from . import frames

KIND_JOB, KIND_RECALL, KIND_REPLY = "job", "recall", "reply"
DONE, RELEASED, SETUP_FAILED = "done", "released", "setup_failed"


class RecordError(ValueError):
    """A frame that holds no record this version of PyMW knows."""


@dataclass(slots=True)
class Job:
    """One job for a worker.

    `source` is the program's text, sent the first time a worker needs that program: the
    function's code to run in-process, or the contract script when `fresh`. `folder`
    names the job's task folder for a fresh process; `data_zip` is the data archive's path
    (generic: a shared filesystem) or its name, with `archive` holding its bytes the first
    time a worker without a shared filesystem needs it (MPI). An output over `max_output`
    bytes is refused, not sent. `codec` is the contract codec of input and output: the
    master asks for "pickle" only where the workers are the user's own processes.
    """

    task_id: int
    program: str
    function: str | None
    input: bytes = b""
    source: str | None = None
    fresh: bool = False
    folder: str = ""
    keep: bool = False
    data_zip: str | None = None
    archive: bytes = b""
    max_output: int | None = None
    setup: bool = False
    codec: str = CODEC_JSON

    def pieces(self) -> list[bytes]:
        header: dict = {"kind": KIND_JOB, "task": self.task_id, "program": self.program}
        if self.function is not None:
            header["function"] = self.function
        if self.source is not None:
            header["source"] = self.source
        if self.max_output is not None:
            header["max_output"] = self.max_output
        if self.fresh:
            header.update(fresh=True, folder=self.folder, keep=self.keep)
        if self.data_zip is not None:
            header["data_zip"] = self.data_zip
        if self.setup:
            header["setup"] = True
        if self.codec != CODEC_JSON:
            header["codec"] = self.codec
        if self.archive:
            header["archive"] = len(self.archive)
            return frames.pieces(header, self.archive + self.input)
        return frames.pieces(header, self.input)

    @classmethod
    def from_frame(cls, frame: frames.Frame) -> Job:
        header, payload = frame.header, frame.payload or b""
        archive_size = header.get("archive", 0)
        return cls(
            header["task"],
            header["program"],
            header.get("function"),
            payload[archive_size:] if archive_size else payload,
            header.get("source"),
            header.get("fresh", False),
            header.get("folder", ""),
            header.get("keep", False),
            header.get("data_zip"),
            payload[:archive_size],
            header.get("max_output"),
            header.get("setup", False),
            header.get("codec", CODEC_JSON),
        )


@dataclass(slots=True)
class Recall:
    """Hand back these jobs if they have not started; each gets a `RELEASED` reply."""

    task_ids: tuple[int, ...]

    def pieces(self) -> list[bytes]:
        return frames.pieces({"kind": KIND_RECALL, "tasks": list(self.task_ids)})


@dataclass(slots=True)
class Reply:
    """What became of one job. `output` is the contract's output envelope, or None when
    there is none: the job was released, produced no output (`detail` says why), or its
    output was `oversize` bytes, over the job's cap, and was refused unread."""

    task_id: int
    output: bytes | bytearray | None = None
    exit_status: int | None = None
    seconds: float = 0.0
    detail: str = ""
    status: str = DONE
    oversize: int = 0

    def pieces(self) -> list[bytes]:
        header: dict = {"kind": KIND_REPLY, "task": self.task_id}
        if self.output is not None:
            header["output"] = True
        if self.exit_status is not None:
            header["exit_status"] = self.exit_status
        if self.seconds:
            header["seconds"] = self.seconds
        if self.detail:
            header["detail"] = self.detail
        if self.oversize:
            header["oversize"] = self.oversize
        if self.status != DONE:
            header["status"] = self.status
        return frames.pieces(header, self.output or b"")

    @classmethod
    def from_frame(cls, frame: frames.Frame) -> Reply:
        header = frame.header
        output = frame.payload if header.get("output") else None
        oversize = header.get("oversize", 0)
        if header.get("output") and frame.payload is None:
            oversize = frame.payload_size  # refused by the reader's cap
        return cls(
            header["task"],
            output,
            header.get("exit_status"),
            header.get("seconds", 0.0),
            header.get("detail", ""),
            header.get("status", DONE),
            oversize,
        )


def to_bytes(record: Job | Recall | Reply) -> bytes:
    """A record as one message (MPI)."""
    return b"".join(record.pieces())


def decode(frame: frames.Frame) -> Job | Recall | Reply:
    """The record a frame holds."""
    kind = frame.header.get("kind")
    try:
        if kind == KIND_JOB:
            return Job.from_frame(frame)
        if kind == KIND_REPLY:
            return Reply.from_frame(frame)
        if kind == KIND_RECALL:
            return Recall(tuple(frame.header["tasks"]))
    except (KeyError, TypeError) as error:
        raise RecordError(f"malformed {kind} record: missing {error}") from None
    raise RecordError(f"unknown record kind {kind!r}")
