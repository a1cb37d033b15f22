"""The jobs a long-lived worker holds, and the one loop that runs them.

A worker holds more than the job it runs (the master sends ahead to hide its round
trip), and must hear a `Recall` while a job runs: the master takes back the jobs not
started yet when another worker sits idle, so a short job never waits behind a long one.
So the loop reads what arrived itself whenever it is between jobs (`poll`, then `wait`
when nothing did), and a watching thread reads only while a job runs (`watch`): one
thread handles each record, and a stream of short jobs costs no hand-off between threads.
The persistent worker (a pipe) and an MPI rank (messages) differ only in how records
arrive and replies leave.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable

from pyboinc import contract

from . import records
from .runner import TaskRunner

Send = Callable[[records.Reply], None]
# Idle polling sleeps from BACKOFF_MIN up to BACKOFF_MAX seconds, doubling. Blocking MPI
# receives spin a core at 100% in MPICH, which starves busy ranks sharing that core; this
# is also what mpi4py.futures does (MPI4PY_FUTURES_BACKOFF, 1 ms).
BACKOFF_MIN = 1e-6
BACKOFF_MAX = 1e-3
# While a job runs, the watching thread looks for records this often: a recall must reach a
# worker busy with a long job (the master waits long_lived.RECALL_AFTER_SECONDS, 50 ms, to
# ask), and so must the end of a generic worker's pipe.
WATCH_INTERVAL = 0.005


class Backoff:
    """Sleep a little longer each time nothing happened; start over when something did."""

    def __init__(self) -> None:
        self.delay = 0.0

    def reset(self) -> None:
        self.delay = 0.0

    def next_delay(self) -> float:
        """0 (only yield) first, then BACKOFF_MIN doubling up to BACKOFF_MAX."""
        delay = self.delay
        self.delay = min(BACKOFF_MAX, max(BACKOFF_MIN, delay * 2))
        return delay


class Inbox:
    """Jobs received and not started, oldest first.

    `poll` delivers what arrived and says whether anything did; `wait` blocks until more
    may have (without it, the loop polls with a backoff: MPI has nothing to block on that
    would not spin a core). Both are called by the loop only while it has no job, and
    `watch`, from the watching thread, polls only while the loop runs one: so the two never
    read at once, and nothing arrives unseen while the loop waits. Without `poll`, records
    are delivered by the caller (tests). A recalled job stays in the queue, marked
    released, and is skipped when its turn comes.
    """

    def __init__(
        self, poll: Callable[[], bool] | None = None, wait: Callable[[], None] | None = None
    ) -> None:
        self._queue: queue.SimpleQueue[records.Job | None] = queue.SimpleQueue()
        self._poll, self._wait = poll, wait
        self._lock = threading.Lock()
        self._waiting: set[int] = set()  # delivered, not taken yet
        # Copies handed back while waiting, by task: one task may come back to this worker
        # and be recalled again before the first copy's turn.
        self._released: Counter[int] = Counter()
        # Held by `watch` while it polls; the loop takes it to stop being busy, so that no
        # watcher poll is still delivering once the loop looks at the queue.
        self._watching = threading.Lock()
        self._busy = False
        self.closed = False

    def deliver(self, record: records.Job | records.Recall, send: Send) -> None:
        """Queue a job, or answer a recall with a RELEASED reply per job handed back."""
        if isinstance(record, records.Recall):
            with self._lock:
                released = [task_id for task_id in record.task_ids if task_id in self._waiting]
                self._waiting.difference_update(released)
                self._released.update(released)  # counts one more copy of each
            for task_id in released:
                send(records.Reply(task_id, status=records.RELEASED))
            return
        with self._lock:
            self._waiting.add(record.task_id)
        self._queue.put(record)

    def close(self) -> None:
        """No more jobs: `take` returns None once those delivered before are taken."""
        self.closed = True
        self._queue.put(None)

    def take(self) -> records.Job | None:
        """The next job to run (the loop's job so far is done), or None once closed."""
        if self._busy:
            with self._watching:
                self._busy = False
        while (job := self._next()) is not None:
            with self._lock:
                if self._released.get(job.task_id):  # (a Counter's [] calls Python)
                    self._released[job.task_id] -= 1
                    continue
                self._waiting.discard(job.task_id)
            self._busy = True
            return job
        self._queue.put(None)  # closed for good
        return None

    def watch(self) -> None:
        """The watching thread's loop: while the loop runs a job, poll every
        WATCH_INTERVAL (when it has none, the loop polls itself)."""
        while not self.closed:
            time.sleep(WATCH_INTERVAL)
            with self._watching:
                if self._busy and not self.closed:
                    self._poll()

    def _next(self) -> records.Job | None:
        if self._poll is None:
            return self._queue.get()
        backoff = Backoff()
        while True:
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                if self._poll():
                    backoff.reset()
                elif self._wait is not None:
                    self._wait()
                else:
                    time.sleep(backoff.next_delay())


def serve(inbox: Inbox, runner: TaskRunner, send: Send) -> int:
    """Run jobs until the inbox closes; returns the worker's exit status.

    A setup job (the initializer) answers only if it fails, as SETUP_FAILED; the worker
    then stops, as a ProcessPoolExecutor worker does.
    """
    while (job := inbox.take()) is not None:
        reply = runner.run(job)
        if not job.setup:
            send(reply)
        elif reply.exit_status != contract.EXIT_OK:
            send(dataclasses.replace(reply, status=records.SETUP_FAILED))
            return 1
    return 0
