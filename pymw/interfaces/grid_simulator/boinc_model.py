"""A model of a BOINC project for the grid simulator: simulate the batch you are about to
submit with `-i boinc`, with the same settings, and read its predicted completion time,
CPU cost and task turnaround.

What decides a real batch's completion time is modelled, with BOINC's names:

- the scheduler: a host contacts it (a scheduler RPC) when it is idle or its work
  buffer falls below `work_buf_min` seconds, asking for enough to fill
  `work_buf_min + work_buf_additional`, and gets no result it could not finish within
  `delay_bound`; not sooner than `min_sendwork_interval` after its last contact; a
  request that gets nothing backs off exponentially (60 s doubling to a day, as the
  client's work fetch); at most `max_wus_to_send` results per contact,
  `daily_result_quota` per host per day and `max_wus_in_progress` at a time; with
  `next_rpc_delay` every host also contacts it that long after each contact;
  `rpc_latency` seconds per contact;
- reporting: with `report_immediately` a finished result is reported at once; otherwise
  (the client's default) at the next contact for work, or an hour after it finished
  (the client's MAX_REPORT_DELAY), whichever comes first;
- the transitioner: each workunit starts with `target_nresults` results; a result not
  reported within `delay_bound` times out and is resent; `min_quorum` agreeing results
  validate it; an inconclusive quorum (a wrong result) gets one more result; more than
  `max_error_results` errors, `max_success_results` successes without agreement or
  `max_total_results` results end it as an error;
- hosts: each result errs with `host_error_rate` and is silently wrong with
  `wrong_result_rate`; hosts come and go with their availability traces; each runs
  `host_ncpus` results at once;
- the fixed costs a small batch is made of (checked against real clients on the BOINC
  sandbox, tests/pymw/interfaces/boinc/test_grid_simulator_vs_sandbox.py): the client
  decides whether to contact the scheduler only every `rpc_poll_period` seconds; a
  result starts `download_delay` after the reply that sent it and can be reported
  `upload_delay` after it ends; a workunit reaches the master `assimilation_delay`
  after it is validated; hosts that asked an empty project before the batch do not
  fetch work on their own for `initial_backoff` seconds.

Simplifications: a host knows its tasks' run times exactly; results reported after
their deadline, and copies no longer needed, are computed but not used.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import random
import statistics
from array import array
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyboinc import contract
from pymw_worker.runner import Functions

from ...errors import UserError
from ..base import Completion, Job
from .engine import IDLE_WINDOW, TaskCall, run_task, stats, task_call
from .holds import Holds
from .workers import SimWorker

SECONDS_PER_DAY = 86_400.0
# The client's work fetch backoff after a request that got no work (client/work_fetch.cpp).
MIN_BACKOFF, MAX_BACKOFF = 60.0, SECONDS_PER_DAY
# The client reports a finished result within this long (client/cs_scheduler.cpp).
MAX_REPORT_DELAY = 3600.0

# Event kinds; at one instant finished work is noticed before the host contacts the
# scheduler, and both before deadlines pass; assimilated workunits reach the master last.
_FINISH, _RPC, _DEADLINE, _ASSIMILATED = 0, 1, 2, 3
# Result states (the server's view), and what a host's computation gave (its verdict).
_UNSENT, _IN_PROGRESS, _DONE, _TIMED_OUT = range(4)
_RIGHT, _WRONG, _ERROR = range(3)


@dataclass(frozen=True)
class BoincPolicy:
    """The settings of a BOINC batch: `set_boinc_args` (target_nresults, min_quorum,
    delay_bound), the workunit's error limits, the project's config.xml, the clients'
    preferences, and how often hosts fail. Times are seconds."""

    target_nresults: int = 2
    min_quorum: int = 1
    delay_bound: float = 86_400.0
    max_error_results: int = 3
    max_total_results: int = 10
    max_success_results: int = 6
    min_sendwork_interval: float = 0.0
    daily_result_quota: int | None = None
    max_wus_in_progress: int | None = None
    max_wus_to_send: int | None = None
    next_rpc_delay: float | None = None
    work_buf_min: float = 0.1 * SECONDS_PER_DAY
    work_buf_additional: float = 0.5 * SECONDS_PER_DAY
    report_immediately: bool = False
    rpc_latency: float = 0.0
    host_error_rate: float = 0.0
    wrong_result_rate: float = 0.0
    seed: int = 0
    #: CPUs per host: it runs this many results at once, and its buffer, daily quota
    #: and max_wus_in_progress count per CPU, as BOINC's do.
    host_ncpus: int = 1
    #: The client looks whether to contact the scheduler only this often (its
    #: SCHEDULER_RPC_POLL_PERIOD, 5 s): a contact happens on the first look at or after
    #: it is due, looks counted from the host's last reply; half a period before its
    #: first reply.
    rpc_poll_period: float = 0.0
    #: From a scheduler reply until the results it sent can start (their files download).
    download_delay: float = 0.0
    #: From a result's end until the client can report it (its output uploads).
    upload_delay: float = 0.0
    #: From a workunit's validation (or failure) until the master has it: the
    #: transitioner's, validator's and assimilator's passes and the master's polling.
    assimilation_delay: float = 0.0
    #: Seconds after the start during which hosts ask for work only at contacts they
    #: make anyway (next_rpc_delay, reports): clients that asked an empty project back
    #: off their own work fetch for 5-15 minutes, longer than a small batch.
    initial_backoff: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_quorum <= self.target_nresults:
            raise UserError("BoincPolicy needs 1 <= min_quorum <= target_nresults")
        if self.max_total_results < self.target_nresults or self.delay_bound <= 0:
            raise UserError(
                "BoincPolicy needs max_total_results >= target_nresults, delay_bound > 0"
            )
        for name in ("host_error_rate", "wrong_result_rate"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"BoincPolicy: {name} must be in [0, 1)")
        if self.host_ncpus < 1:
            raise UserError("BoincPolicy: host_ncpus must be at least 1")
        delays = ("rpc_latency", "rpc_poll_period", "download_delay", "upload_delay")
        for name in (*delays, "assimilation_delay", "initial_backoff"):
            if getattr(self, name) < 0:
                raise UserError(f"BoincPolicy: {name} must not be negative")


@dataclass(eq=False)
class _Workunit:
    job: Job
    call: TaskCall
    created: float
    number: int
    results: list[int] = field(default_factory=list)
    successes: int = 0
    correct: int = 0
    errors: int = 0
    outcome: contract.Outcome | None = None
    done: bool = False
    validated: bool = False


@dataclass(eq=False)
class _Host:
    worker: SimWorker
    queue: deque[int] = field(default_factory=deque)  # results to run, in order
    queued_seconds: float = 0.0  # their run time, the running ones' included
    unreported: list[int] = field(default_factory=list)
    running: set[int] = field(default_factory=set)  # at most host_ncpus
    last_rpc: float = -math.inf
    last_reply: float = -math.inf  # the client's scheduler polls count from it
    backoff: float = 0.0
    next_rpc: float = math.inf  # when its next contact is planned
    day: int = 0
    sent_today: int = 0


class BoincProject:
    """The engine: the master hands every task over at once (BOINC's create_work), and
    `wait()` plays the project forward to the next validated or failed workunit."""

    calls_in_process = True  # as GridSimulatorInterface: arguments come unencoded

    def __init__(self, hosts: Iterable[SimWorker], policy: BoincPolicy | None = None) -> None:
        self.policy = policy or BoincPolicy()
        self.time = 0.0
        self._hosts = [_Host(worker) for worker in hosts]
        if not self._hosts:
            raise UserError("a simulated BOINC project needs hosts")
        self._rng = random.Random(self.policy.seed)
        self._functions = Functions()
        self._events: list[tuple[float, int, int, int]] = []
        self._sequence = itertools.count()
        self._unsent: deque[int] = deque()
        self._workunits: list[_Workunit] = []
        # Per result: its workunit, host, deadline, state, CPU-seconds and verdict.
        self._result_wu = array("q")
        self._result_host = array("q")
        self._deadline = array("d")
        self._state = bytearray()
        self._cpu = array("d")
        self._verdict = bytearray()
        self._startable = array("d")  # when its input files are on the host
        self._reportable = array("d")  # when its output is uploaded
        self._outcome: dict[int, contract.Outcome] = {}
        self.turnarounds = array("d")  # per validated workunit: created to in the master
        self.completion_times = array("d")
        self._counts = dict.fromkeys(("sent", "errors", "timed_out", "wrong", "rpcs"), 0)
        self._cpu_total = 0.0
        self._holds = Holds()
        self._outstanding = 0  # workunits neither validated nor given up
        self._handed_over = False
        for number in range(len(self._hosts)):
            self._plan_rpc(number, 0.0)  # a client contacts the project when it attaches

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """Submit the batch inside this: the clock starts once it is all created."""
        return self._holds.hold()

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return len(self._hosts)

    def idle_workers(self) -> list[Any]:
        """The project takes every workunit at once: as many slots as the master may
        fill in one go."""
        return [self] * IDLE_WINDOW

    def execute(self, job: Job, worker: Any) -> None:
        self._handed_over = True
        self._outstanding += 1
        number = len(self._workunits)
        self._workunits.append(_Workunit(job, task_call(self._functions, job), self.time, number))
        for _ in range(self.policy.target_nresults):
            self._new_result(number)

    def wait(self, timeout: float | None) -> list[Completion]:
        if self._handed_over:  # the master may have more to create before time moves
            self._handed_over = False
            return []
        if self._holds.frozen or not self._outstanding:
            self._holds.sleep(timeout)
            return []
        completions: list[Completion] = []
        while self._events and not completions:
            self.time, kind, _, subject = heapq.heappop(self._events)
            if kind == _FINISH:
                self._finish(subject)
            elif kind == _RPC:
                completions += self._rpc(subject)
            elif kind == _DEADLINE:
                completions += self._deadline_passed(subject)
            else:
                completions += self._assimilated(subject, self.time)
        return completions

    def wakeup(self) -> None:
        self._holds.woken.set()

    def cleanup(self) -> None:
        self._holds.woken.set()

    def get_status(self) -> dict[str, Any]:
        """The prediction: makespan, CPU cost (every result computed), turnaround."""
        turnaround = stats(self.turnarounds)
        status: dict[str, Any] = {
            "name": "grid_simulator (BOINC model)",
            "sim_time": self.completion_times[-1] if self.completion_times else 0.0,
            "num_workers": len(self._hosts),
            "num_executed_tasks": len(self.turnarounds),
            "cpu_seconds": self._cpu_total,
            "results_sent": self._counts["sent"],
            "results_errored": self._counts["errors"],
            "results_timed_out": self._counts["timed_out"],
            "results_wrong": self._counts["wrong"],
            "scheduler_rpcs": self._counts["rpcs"],
        }
        status.update({f"{key}_turnaround": value for key, value in turnaround.items()})
        if len(self.turnarounds) >= 2:
            status["p90_turnaround"] = statistics.quantiles(self.turnarounds, n=10)[-1]
        return status

    # --------------------------------------------------------------- the model

    def _push(self, when: float, kind: int, subject: int) -> None:
        heapq.heappush(self._events, (when, kind, next(self._sequence), subject))

    def _new_result(self, workunit: int) -> None:
        number = len(self._state)
        self._result_wu.append(workunit)
        self._result_host.append(-1)
        self._deadline.append(math.inf)
        self._state.append(_UNSENT)
        self._cpu.append(0.0)
        self._verdict.append(_RIGHT)
        self._startable.append(0.0)
        self._reportable.append(math.inf)
        self._workunits[workunit].results.append(number)
        self._unsent.append(number)

    def _plan_rpc(self, number: int, when: float) -> None:
        """Contact the scheduler at `when`, or when the host is next available."""
        host = self._hosts[number]
        policy = self.policy
        when = max(when, host.last_rpc + policy.min_sendwork_interval)
        when = host.worker.available_from(when)
        period = policy.rpc_poll_period
        if period and when < math.inf:
            if host.last_reply == -math.inf:
                when += period / 2
            else:
                when = host.last_reply + math.ceil((when - host.last_reply) / period) * period
        if when < host.next_rpc and when < math.inf:
            host.next_rpc = when
            self._push(when, _RPC, number)

    def _rpc(self, number: int) -> list[Completion]:
        host = self._hosts[number]
        if self.time != host.next_rpc:
            return []  # superseded by an earlier contact
        host.next_rpc = math.inf
        host.last_rpc = self.time
        self._counts["rpcs"] += 1
        now = self.time + self.policy.rpc_latency
        host.last_reply = now
        ready = [r for r in host.unreported if self._reportable[r] <= self.time]
        completions = [c for result in ready for c in self._report(result, now)]
        host.unreported = [r for r in host.unreported if self._reportable[r] > self.time]
        if self._wants_work(host):
            got = self._send_work(number, now)
            if got:
                host.backoff = 0.0
            else:
                host.backoff = min(MAX_BACKOFF, max(MIN_BACKOFF, 2 * host.backoff))
                self._plan_rpc(number, self.time + host.backoff)
        if self.policy.next_rpc_delay is not None:
            self._plan_rpc(number, now + self.policy.next_rpc_delay)
        for result in host.unreported:  # still uploading
            self._plan_report(number, result)
        return completions

    def _send_work(self, number: int, now: float) -> int:
        """Results from the queue until the host's buffer is full; how many."""
        host, policy = self._hosts[number], self.policy
        buffer = policy.work_buf_min + policy.work_buf_additional
        wanted = buffer * policy.host_ncpus - host.queued_seconds
        day = int(now // SECONDS_PER_DAY)
        if day != host.day:
            host.day, host.sent_today = day, 0
        sent = 0
        most = policy.max_wus_to_send
        while self._unsent and wanted > 0 and self._within_limits(host):
            if most is not None and sent >= most:
                break
            result = self._unsent.popleft()
            workunit = self._workunits[self._result_wu[result]]
            if workunit.done:
                continue
            seconds, outcome = run_task(workunit.call, host.worker)
            if host.queued_seconds / policy.host_ncpus + seconds > policy.delay_bound:
                self._unsent.appendleft(result)  # it could not make its deadline here
                break
            self._result_host[result], self._state[result] = number, _IN_PROGRESS
            self._cpu[result], self._outcome[result] = seconds, outcome
            self._deadline[result] = now + policy.delay_bound
            self._startable[result] = now + policy.download_delay
            self._push(self._deadline[result], _DEADLINE, result)
            host.queue.append(result)
            host.queued_seconds += seconds
            host.sent_today += 1
            wanted -= seconds
            sent += 1
            self._counts["sent"] += 1
        self._start_next(number, now)
        return sent

    def _wants_work(self, host: _Host) -> bool:
        """Below its buffer's minimum, or a CPU idle (the client's work fetch)."""
        ncpus = self.policy.host_ncpus
        idle = len(host.running) < ncpus and not host.queue
        return idle or host.queued_seconds < self.policy.work_buf_min * ncpus

    def _within_limits(self, host: _Host) -> bool:
        """Whether the daily quota and max_wus_in_progress (both per CPU) let the host
        take one more."""
        ncpus = self.policy.host_ncpus
        quota, most = self.policy.daily_result_quota, self.policy.max_wus_in_progress
        in_progress = len(host.queue) + len(host.running)
        return (quota is None or host.sent_today < quota * ncpus) and (
            most is None or in_progress < most * ncpus
        )

    def _start_next(self, number: int, now: float) -> None:
        """Start queued results on the host's free CPUs, once their files are there."""
        host = self._hosts[number]
        while host.queue and len(host.running) < self.policy.host_ncpus:
            result = host.queue.popleft()
            host.running.add(result)
            start = max(now, self._startable[result])
            finish = host.worker.finish_time(start, self._cpu[result])
            if finish < math.inf:  # otherwise the host left the grid: the result times out
                self._push(finish, _FINISH, result)

    def _finish(self, result: int) -> None:
        number, policy = self._result_host[result], self.policy
        host = self._hosts[number]
        host.running.discard(result)
        host.queued_seconds -= self._cpu[result]
        self._cpu_total += self._cpu[result]
        draw = self._rng.random()
        if draw < policy.host_error_rate:
            self._verdict[result] = _ERROR
        elif draw < policy.host_error_rate + policy.wrong_result_rate:
            self._verdict[result] = _WRONG
        self._reportable[result] = self.time + policy.upload_delay
        host.unreported.append(result)
        self._start_next(number, self.time)
        if self._wants_work(host) and self.time >= policy.initial_backoff:
            self._plan_rpc(number, self.time)
        self._plan_report(number, result)

    def _plan_report(self, number: int, result: int) -> None:
        """The contact that reports a finished result: once uploaded with
        report_immediately, else MAX_REPORT_DELAY after it ended at the latest."""
        uploaded = self._reportable[result]
        if self.policy.report_immediately:
            self._plan_rpc(number, uploaded)
        else:
            self._plan_rpc(number, uploaded - self.policy.upload_delay + MAX_REPORT_DELAY)

    def _report(self, result: int, now: float) -> list[Completion]:
        """The transitioner and validator on a reported result."""
        if now > self._deadline[result] or self._state[result] != _IN_PROGRESS:
            return []  # too late: it times out (or did), and is resent
        workunit_number = self._result_wu[result]
        workunit = self._workunits[workunit_number]
        if workunit.done:
            return []
        self._state[result] = _DONE
        if self._verdict[result] == _ERROR:
            self._counts["errors"] += 1
            return self._failed(workunit_number, now)
        workunit.successes += 1
        if self._verdict[result] == _RIGHT:
            workunit.correct += 1
            workunit.outcome = workunit.outcome or self._outcome[result]
        else:
            self._counts["wrong"] += 1
        if workunit.correct >= self.policy.min_quorum:
            return self._validated(workunit, now)
        if workunit.successes >= self.policy.min_quorum:  # inconclusive: one more result
            if workunit.successes >= self.policy.max_success_results:
                return self._given_up(workunit, now, "too many successes without agreement")
            return self._more(workunit_number, now)
        return []

    def _deadline_passed(self, result: int) -> list[Completion]:
        if self._state[result] != _IN_PROGRESS:
            return []
        self._state[result] = _TIMED_OUT
        self._counts["timed_out"] += 1
        return self._failed(self._result_wu[result], self.time)

    def _failed(self, workunit_number: int, now: float) -> list[Completion]:
        workunit = self._workunits[workunit_number]
        workunit.errors += 1
        if workunit.errors > self.policy.max_error_results:
            return self._given_up(workunit, now, "too many error results")
        return self._more(workunit_number, now)

    def _more(self, workunit_number: int, now: float) -> list[Completion]:
        workunit = self._workunits[workunit_number]
        if len(workunit.results) >= self.policy.max_total_results:
            return self._given_up(workunit, now, "too many total results")
        self._new_result(workunit_number)
        return []

    def _validated(self, workunit: _Workunit, now: float) -> list[Completion]:
        workunit.validated = True
        return self._ended(workunit, now)

    def _given_up(self, workunit: _Workunit, now: float, why: str) -> list[Completion]:
        workunit.outcome = _failure(RuntimeError(f"BOINC gave up on the workunit: {why}"))
        return self._ended(workunit, now)

    def _ended(self, workunit: _Workunit, now: float) -> list[Completion]:
        """The workunit is over; the master has it after the assimilation delay."""
        workunit.done = True
        if self.policy.assimilation_delay:
            self._push(now + self.policy.assimilation_delay, _ASSIMILATED, workunit.number)
            return []
        return self._assimilated(workunit.number, now)

    def _assimilated(self, number: int, now: float) -> list[Completion]:
        workunit = self._workunits[number]
        self._outstanding -= 1
        if workunit.validated:
            self.turnarounds.append(now - workunit.created)
        self.completion_times.append(now)
        return [Completion(workunit.job.task_id, None, exit_status=0, outcome=workunit.outcome)]


def _failure(error: BaseException) -> contract.Outcome:
    def fail() -> None:
        raise error

    return contract.call_task(fail)
