"""Failure Trace Archive (FTA) availability traces: a streaming reader and a generator.

An FTA `event_trace.tab` file is tab-separated, with a header line naming the columns
and one row per event (fta.scem.uws.edu.au): a node was available (`event_type` 1) or
not (0) from `event_start_time` to `event_stop_time`, in seconds. The reader goes
through the file a line at a time and keeps only each node's available intervals as two
flat arrays, so memory grows with the hosts and their events, never with the file.
"""

from __future__ import annotations

import random
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import UserError
from .workers import SimWorker

FTA_COLUMNS = (
    "event_id",
    "component_id",
    "node_id",
    "platform_id",
    "node_name",
    "event_type",
    "event_start_time",
    "event_stop_time",
    "event_end_reason",
)
FTA_NODE, FTA_TYPE, FTA_START, FTA_STOP = (
    "node_id",
    "event_type",
    "event_start_time",
    "event_stop_time",
)
FTA_AVAILABLE, FTA_UNAVAILABLE = 1, 0


def read_fta_workers(
    path: str | Path,
    *,
    num_workers: int | None = None,
    speed_func: Callable[[int], float] = lambda _index: 1.0,
) -> list[SimWorker]:
    """Workers whose availability replays a Failure Trace Archive `event_trace.tab`.

    Rows need node_id, event_start_time and event_stop_time; with an event_type column
    only type 1 (available) rows count. Gaps between a node's events are unavailable
    time. The earliest event of the file is time 0 of the simulation; after its last
    event a node leaves the grid. `num_workers` keeps the first that many nodes.
    """
    intervals = _available_intervals(path, num_workers)
    if not intervals:
        raise UserError(f"{path} has no availability events")
    origin = min(min(events[0::2]) for events in intervals.values())
    workers = []
    for index, (name, events) in enumerate(intervals.items()):
        trace = list(_trace(events, origin))
        if trace:
            workers.append(SimWorker(name, speed_func(index), trace))
    return workers


def _available_intervals(path: str | Path, num_workers: int | None) -> dict[str, array]:
    """Each node's available (start, stop) pairs, flat, in the order nodes first appear."""
    intervals: dict[str, array] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            columns = handle.readline().split()
            missing = {FTA_NODE, FTA_START, FTA_STOP} - set(columns)
            if missing:
                raise UserError(
                    f"{path} is not an FTA event trace: no {', '.join(sorted(missing))}"
                )
            node, start, stop = (columns.index(name) for name in (FTA_NODE, FTA_START, FTA_STOP))
            kind = columns.index(FTA_TYPE) if FTA_TYPE in columns else None
            for line in handle:
                fields = line.split()
                if len(fields) < len(columns) or (
                    kind is not None and int(fields[kind]) != FTA_AVAILABLE
                ):
                    continue
                events = intervals.get(fields[node])
                if events is None:
                    if num_workers and len(intervals) >= num_workers:
                        continue
                    events = intervals[fields[node]] = array("d")
                events.append(float(fields[start]))
                events.append(float(fields[stop]))
    except OSError as error:
        raise UserError(f"cannot read FTA trace {path}: {error.strerror}") from None
    except ValueError as error:
        raise UserError(f"{path}: malformed FTA row ({error})") from None
    return intervals


def _trace(events: array, origin: float) -> Iterator[tuple[float, float]]:
    """A node's (length, fraction) intervals from its available (start, stop) pairs."""
    clock = origin
    for begin, end in sorted(zip(events[0::2], events[1::2], strict=True)):
        begin = max(begin, clock)
        if begin > clock:
            yield begin - clock, 0.0
        if end > begin:
            yield end - begin, 1.0
            clock = end


def write_fta_trace(
    path: str | Path,
    hosts: int,
    *,
    duration: float,
    mean_on: float,
    mean_off: float,
    seed: int = 0,
) -> int:
    """Write a synthetic FTA `event_trace.tab`: each host alternates available and
    unavailable stretches (exponential lengths) over `duration` seconds, starting in a
    random state. For tests and benchmarks; returns the number of rows."""
    rng = random.Random(seed)
    rows = 0
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\t".join(FTA_COLUMNS) + "\n")
        for host in range(hosts):
            clock, available = 0.0, rng.random() < mean_on / (mean_on + mean_off)
            while clock < duration:
                length = rng.expovariate(1 / (mean_on if available else mean_off))
                end = min(duration, clock + length)
                kind = FTA_AVAILABLE if available else FTA_UNAVAILABLE
                handle.write(
                    f"{rows}\t0\t{host}\t0\thost{host}\t{kind}\t{clock:.3f}\t{end:.3f}\t0\n"
                )
                rows += 1
                clock, available = end, not available
    return rows
