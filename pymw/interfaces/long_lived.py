"""What the generic and MPI engines share about long-lived workers (`pymw_worker`).

Both send jobs ahead of the one a worker runs, to hide the round trip, and both must not
let a job wait behind a long one while another worker idles. `Prefetch` holds that policy
once: how many jobs a worker may hold (deep only while tasks are short), which worker gets
the next one (idle workers first), and when to recall the jobs queued behind a job that
runs long, so an idle worker runs them. It also turns master jobs into `pymw_worker`
records and replies into Completions: one function, `completion_of`, for both engines.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from pyboinc import contract
from pymw_worker import records

from .base import Completion, Job, WorkerSetup

# Seconds a worker gets to exit after its pipe closes, before it is killed.
WORKER_EXIT_GRACE = 2.0
# Weight of the newest task in the running mean of task durations.
DURATION_SMOOTHING = 0.1
# Tasks shorter than this on average get the deep prefetch.
SHORT_TASK_SECONDS = 0.005
# Jobs queued on a worker behind one that has run this long are recalled when another
# worker is idle; when tasks are long (a mean of SHORT_TASK_SECONDS or more), already
# behind one that has run SHORT_TASK_SECONDS: the idle worker, which has nothing else to
# do, starts them within a watch interval, sooner than the running job would likely end.
RECALL_AFTER_SECONDS = 0.05
# Jobs are sent ahead of a worker's running one only while those it holds carry less input
# than this: beyond, moving the bytes costs more than the round trip, and a deep queue of
# big inputs only keeps the other workers waiting for the master's writes.
PREFETCH_BYTES = 1 << 20
# The task id of a worker's initializer job (tasks count up from 0).
SETUP_TASK_ID = -1


@dataclass(eq=False)
class WorkerState:
    """The master's view of one long-lived worker: the jobs sent to it, oldest (the
    running one) first, and what it was already sent once."""

    in_flight: deque[int] = field(default_factory=deque)
    known_programs: set[str] = field(default_factory=set)
    known_archives: set[str] = field(default_factory=set)
    jobs_taken: int = 0  # jobs given to this worker process, for WorkerSetup.max_tasks
    head_since: float = 0.0  # when the running job began, about
    recalled: set[int] = field(default_factory=set)  # asked back, not answered yet
    input_sizes: dict[int, int] = field(default_factory=dict)  # of the jobs in flight
    input_bytes: int = 0  # their sum
    alive: bool = True


Worker = TypeVar("Worker", bound=WorkerState)


class Prefetch:
    """How jobs are spread over long-lived workers; see the module docstring."""

    def __init__(self, shallow: int, deep: int) -> None:
        self.shallow, self.deep = shallow, deep
        self.mean_seconds: float | None = None
        self.setup = WorkerSetup()

    def depth(self) -> int:
        mean = self.mean_seconds
        return self.deep if mean is not None and mean < SHORT_TASK_SECONDS else self.shallow

    def room(self, worker: WorkerState) -> int:
        """How many more jobs `worker` may take now."""
        if worker.in_flight and worker.input_bytes >= PREFETCH_BYTES:
            return 0
        room = self.depth() - len(worker.in_flight)
        if self.setup.max_tasks is not None:
            room = min(room, self.setup.max_tasks - worker.jobs_taken)
        return max(0, room) if worker.alive else 0

    def slots(self, workers: Sequence[Worker]) -> list[Worker]:
        """A slot per job the workers can take now, the least loaded first: sending
        ahead to a busy worker only hides the round trip, it must not keep an idle one
        waiting."""
        order = sorted(
            (len(worker.in_flight) + depth, index)
            for index, worker in enumerate(workers)
            for depth in range(self.room(worker))
        )
        return [workers[index] for _, index in order]

    def retiring(self, worker: WorkerState) -> bool:
        """True when `worker` ran its `max_tasks` and holds nothing: replace it."""
        limit = self.setup.max_tasks
        return limit is not None and worker.jobs_taken >= limit and not worker.in_flight

    def record(
        self,
        job: Job,
        worker: WorkerState,
        *,
        fresh: bool,
        data_zip: str | None = None,
        archive: bytes = b"",
    ) -> records.Job:
        """The record that sends `job` to `worker`, with the program's text the first time
        that worker needs it; `data_zip` and `archive` as `records.Job` has them."""
        program = job.program
        source = None
        if program.digest not in worker.known_programs:
            source = program.script if fresh else program.code
            worker.known_programs.add(program.digest)
        if not worker.in_flight:
            worker.head_since = time.monotonic()
        worker.in_flight.append(job.task_id)
        worker.jobs_taken += 1
        size = worker.input_sizes[job.task_id] = len(job.input_bytes) + len(archive)
        worker.input_bytes += size
        return records.Job(
            job.task_id,
            program.digest,
            program.function_name,
            job.input_bytes,
            source,
            fresh,
            f"{job.task_name}-{job.attempt}" if fresh else "",
            job.keep_files,
            data_zip,
            archive,
            job.max_output_bytes,
            codec=job.codec,
        )

    def setup_record(self, worker: WorkerState) -> records.Job | None:
        """The initializer job a new worker runs first, if there is an initializer."""
        program = self.setup.initializer
        if program is None:
            return None
        worker.known_programs.add(program.digest)
        arguments = self.setup.initializer_input
        return records.Job(
            SETUP_TASK_ID,
            program.digest,
            program.function_name,
            arguments,
            program.code,
            setup=True,
            # The master encoded the arguments itself, with its codec: so they tell it.
            codec=contract.codec_of(arguments),
        )

    def completion(self, worker: WorkerState, reply: records.Reply) -> Completion:
        """Book a reply from `worker` and make it the master's Completion."""
        if reply.status == records.SETUP_FAILED:
            return completion_of(reply)
        was_head = bool(worker.in_flight) and worker.in_flight[0] == reply.task_id
        worker.in_flight.remove(reply.task_id)
        worker.recalled.discard(reply.task_id)
        worker.input_bytes -= worker.input_sizes.pop(reply.task_id, 0)
        if reply.status == records.RELEASED:
            worker.jobs_taken -= 1
            return completion_of(reply)
        if was_head:
            worker.head_since = time.monotonic()
        mean = self.mean_seconds
        seconds = reply.seconds
        self.mean_seconds = (
            seconds if mean is None else mean + DURATION_SMOOTHING * (seconds - mean)
        )
        return completion_of(reply)

    def recalls(
        self, workers: Sequence[Worker], now: float
    ) -> tuple[list[tuple[Worker, records.Recall]], float | None]:
        """The recalls to send now, and when to look again (None: not until a reply).

        Only while a worker is idle, which is at a batch's end (the dispatcher gives an
        idle worker a queued task first): the jobs queued behind a job that has run for
        RECALL_AFTER_SECONDS come back, or SHORT_TASK_SECONDS when tasks are long. Short
        tasks keep the longer wait: the few milliseconds a recall takes would cost more
        than the jobs it moves.
        """
        if not any(
            worker.alive and not worker.in_flight and self.room(worker) for worker in workers
        ):
            return [], None
        mean = self.mean_seconds
        long_tasks = mean is not None and mean >= SHORT_TASK_SECONDS
        patience = SHORT_TASK_SECONDS if long_tasks else RECALL_AFTER_SECONDS
        due, look_again = [], None
        for worker in workers:
            if not worker.alive or len(worker.in_flight) < 2 or worker.recalled:
                continue
            when = worker.head_since + patience
            if when <= now:
                queued = tuple(list(worker.in_flight)[1:])
                worker.recalled.update(queued)
                due.append((worker, records.Recall(queued)))
            else:
                look_again = when if look_again is None else min(look_again, when)
        return due, look_again


def completion_of(reply: records.Reply) -> Completion:
    """A worker's reply as the master's Completion, for every engine with frames."""
    if reply.status == records.RELEASED:
        return Completion(
            reply.task_id, None, lost=True, started=False, detail="recalled for an idle worker"
        )
    return Completion(
        reply.task_id,
        reply.output,
        exit_status=reply.exit_status,
        lost=reply.output is None and not reply.oversize,
        detail=reply.detail,
        oversize=reply.oversize,
        setup_failed=reply.status == records.SETUP_FAILED,
    )
