"""Who reads a long-lived worker's records: the loop between jobs, the watching thread
while one runs, never both at once, and nothing left unread while the loop waits."""

import random
import threading
import time
from collections import deque

from pymw_worker import inbox, records


class Source:
    """Records 'arriving' as a pipe's would, read by `poll`, which notes any two reads at
    once and takes long enough for such an overlap to show."""

    def __init__(self) -> None:
        self.arrived: deque = deque()  # records, and None for the end (closes the inbox)
        self.sent: list[records.Reply] = []
        self.jobs = inbox.Inbox(self.poll, self.wait)
        self._reading = 0
        self.overlaps = 0
        self.readers: set[str] = set()

    def poll(self) -> bool:
        self._reading += 1
        self.overlaps += self._reading > 1
        self.readers.add(threading.current_thread().name)
        try:
            time.sleep(0.001)
            delivered = False
            while self.arrived:
                record = self.arrived.popleft()
                if record is None:
                    self.jobs.close()
                    return True
                self.jobs.deliver(record, self.sent.append)
                delivered = True
            return delivered
        finally:
            self._reading -= 1

    def wait(self) -> None:
        time.sleep(0.0005)  # a select on the pipe, which this source has not


class Runner:
    def __init__(self, seconds) -> None:
        self.seconds, self.ran = seconds, []

    def run(self, job: records.Job) -> records.Reply:
        self.ran.append(job.task_id)
        time.sleep(self.seconds(job))
        return records.Reply(job.task_id, b"", 0)


def test_the_loop_and_the_watcher_never_read_at_once_and_every_job_runs():
    source = Source()
    runner = Runner(lambda job: random.choice([0.0, 0.0, 0.002, 0.008]))
    threading.Thread(target=source.jobs.watch, name="watcher", daemon=True).start()

    def arrive():
        for task_id in range(200):
            source.arrived.append(records.Job(task_id, "p", "f"))
            time.sleep(random.choice([0.0, 0.0, 0.001, 0.006]))
        source.arrived.append(None)

    threading.Thread(target=arrive, daemon=True).start()
    assert inbox.serve(source.jobs, runner, source.sent.append) == 0
    assert runner.ran == list(range(200))
    assert [reply.task_id for reply in source.sent] == list(range(200))
    assert source.overlaps == 0
    assert source.readers == {"MainThread", "watcher"}  # the watcher read during long jobs


def test_a_recall_is_answered_while_the_loop_runs_a_long_job():
    source = Source()
    release = threading.Event()
    runner = Runner(lambda job: 0.0 if job.task_id else release.wait(10) and 0.0)
    threading.Thread(target=source.jobs.watch, daemon=True).start()
    source.arrived.append(records.Job(0, "p", "f"))
    loop = threading.Thread(target=inbox.serve, args=(source.jobs, runner, source.sent.append))
    loop.start()
    deadline = time.monotonic() + 5
    while runner.ran != [0] and time.monotonic() < deadline:
        time.sleep(0.001)
    source.arrived.extend([records.Job(1, "p", "f"), records.Recall((1,))])
    while not source.sent and time.monotonic() < deadline:
        time.sleep(0.001)
    assert source.sent == [records.Reply(1, status=records.RELEASED)]  # job 0 still runs
    release.set()
    source.arrived.append(None)
    loop.join(10)
    assert runner.ran == [0]
