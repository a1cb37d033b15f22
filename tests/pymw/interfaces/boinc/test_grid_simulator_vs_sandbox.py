"""The grid simulator's BOINC model against a real batch: real clients on the sandbox (slow).

One small batch runs twice: through `-i boinc` on the BOINC sandbox, with two real Debian
clients (each with the machine's CPUs), and in `BoincProject` with the same settings. The
model gets only what a user could know or measure on the machine: the project's
config.xml values, the hosts and their CPUs, the client's compile-time polls, the
sandbox's daemon periods, the master's polling, and the client's own costs (a task's run
time, a scheduler RPC, a file transfer) measured from the clients' logs of this very
run, so that a busy machine slows both sides alike. The simulated makespan must be
within 25% of the measured one, and a model without the delays must not be.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import pytest
from boinc_hosts import add_host, wait_attached

from pymw import pymw
from pymw.interfaces.boinc import BOINCInterface
from pymw.interfaces.boinc.constants import POLL_INTERVAL_MAX
from pymw.interfaces.grid_simulator import BoincPolicy, BoincProject, SimWorker
from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import DAEMON_SLEEP_SECONDS

pytestmark = pytest.mark.slow

HOSTS = 2
TASKS = 24
TASK_SLEEP = 1.5
#: config.xml: a few jobs per reply, so that the batch takes several scheduler RPCs;
#: next_rpc_delay makes the clients come back by themselves (the real project has none,
#: and its clients would wait 10 minutes to a day).
MAX_WUS_TO_SEND = 4
NEXT_RPC_DELAY = 8
#: More than a day, so the client reports lazily, at its next scheduler RPC: it reports
#: at once a result due within a day (client/cs_scheduler.cpp, REPORT_DEADLINE_CUSHION).
DELAY_BOUND = 3 * 86400
#: The client's SCHEDULER_RPC_POLL_PERIOD (client/cs_scheduler.cpp).
CLIENT_RPC_POLL_PERIOD = 5.0
#: After "Project has no tasks available" the client backs off its own work fetch for
#: 0.5 to 1.5 times WF_MIN_BACKOFF_INTERVAL (600 s, client/work_fetch.cpp).
CLIENT_WORK_FETCH_BACKOFF = 0.5 * 600
#: A validated workunit reaches the master after the transitioner's, validator's and
#: assimilator's passes (each waits half its idle sleep on average) and the master's
#: look at the task directory (half its longest poll interval: results come seconds
#: apart, so the poller has backed off).
ASSIMILATION_DELAY = 3 * DAEMON_SLEEP_SECONDS / 2 + POLL_INTERVAL_MAX / 2
TOLERANCE = 0.25

LOG_LINE = re.compile(r"^(\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d) \[[^\]]*\] (.*)$")


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def cpu_seconds(worker, seconds):
    return seconds / worker.speed


@dataclass(frozen=True)
class ClientCosts:
    """Seconds the real clients took, averaged over this run (1 s log resolution)."""

    task: float  # "Starting task" to "Computation ... finished"
    rpc: float  # "Sending scheduler request" to "Scheduler request completed"
    download: float  # a reply with tasks to the first of them starting
    upload: float  # a task's end to its output uploaded


def log_events(log: str, since: float) -> list[tuple[float, str]]:
    events = []
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if match:
            when = datetime.strptime(match.group(1), "%d-%b-%Y %H:%M:%S").timestamp()
            if when >= since - 1:
                events.append((when, match.group(2)))
    return events


def client_costs(logs: list[str], since: float) -> ClientCosts:
    task, rpc, download, upload = [], [], [], []
    for log in logs:
        started: dict[str, float] = {}
        ended: dict[str, float] = {}
        sending = reply = None
        for when, message in log_events(log, since):
            if message.startswith("Sending scheduler request"):
                sending = when
            elif message.startswith("Scheduler request completed") and sending is not None:
                rpc.append(when - sending)
                reply = when if re.search(r"got [1-9]\d* new tasks", message) else None
            elif found := re.match(r"Starting task (\S+)", message):
                started[found.group(1)] = when
                if reply is not None:
                    download.append(when - reply)
                    reply = None
            elif found := re.match(r"Computation for task (\S+) finished", message):
                ended[found.group(1)] = when
                task.append(when - started[found.group(1)])
            elif found := re.match(r"Finished upload of (\S+)_r\d+_\d+$", message):
                upload.append(when - ended[found.group(1)])
    assert len(task) == TASKS and rpc and download and upload, (task, rpc, download, upload)
    mean = statistics.fmean
    return ClientCosts(mean(task), mean(rpc), mean(download), mean(upload))


def run_on_sandbox(sandbox: Sandbox, task_dir: Path) -> tuple[float, ClientCosts]:
    """The batch's makespan on the sandbox, from the clients' first update to the last
    result in the master, and what the clients' costs were meanwhile."""
    sandbox.project.set_config_value("max_wus_to_send", str(MAX_WUS_TO_SEND))
    clients = [add_host(sandbox, f"host{i}") for i in range(HOSTS)]
    # Their first request finds no work: they back off, as volunteers' idle clients do.
    assert wait_attached(sandbox, HOSTS, timeout=120)
    interface = BOINCInterface(sandbox.project_dir, task_path=task_dir)
    interface.set_boinc_args(target_nresults=1, min_quorum=1, delay_bound=DELAY_BOUND)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [master.submit_task(nap, input_data=(TASK_SLEEP,)) for _ in range(TASKS)]
        assert sandbox.wait_for("results_ready_to_send", TASKS, timeout=120)
        sandbox.project.set_config_value("next_rpc_delay", str(NEXT_RPC_DELAY))
        since, start = time.time(), time.monotonic()
        sandbox.update_clients()  # the volunteers look in once; from then on, by themselves
        results = [master.get_result(task)[1] for task in tasks]
        makespan = time.monotonic() - start
    assert results == [TASK_SLEEP] * TASKS
    return makespan, client_costs([client.log() for client in clients], since)


def host_ncpus(sandbox: Sandbox) -> int:
    """The CPUs the clients reported to the scheduler: each runs that many tasks at once."""
    with sqlite3.connect(sandbox.project.db_path) as db:
        (ncpus,) = {n for (n,) in db.execute("SELECT p_ncpus FROM host")}
    return ncpus


def sandbox_policy(sandbox: Sandbox, costs: ClientCosts) -> BoincPolicy:
    """BoincPolicy for the sandbox project, its clients and this machine."""
    config = sandbox.project.config_value
    return BoincPolicy(
        target_nresults=1,
        min_quorum=1,
        delay_bound=DELAY_BOUND,
        min_sendwork_interval=float(config("min_sendwork_interval")),
        max_wus_to_send=int(config("max_wus_to_send")),
        next_rpc_delay=float(config("next_rpc_delay")),
        host_ncpus=host_ncpus(sandbox),
        rpc_poll_period=CLIENT_RPC_POLL_PERIOD,
        rpc_latency=costs.rpc,
        download_delay=costs.download,
        upload_delay=costs.upload,
        assimilation_delay=ASSIMILATION_DELAY,
        initial_backoff=CLIENT_WORK_FETCH_BACKOFF,
    )


def simulated_makespan(policy: BoincPolicy, task_seconds: float) -> float:
    project = BoincProject([SimWorker(f"host{i}", 1.0) for i in range(HOSTS)], policy)
    with pymw.PyMW_Master(project, show_progress=False) as master:
        with project.hold():
            tasks = [master.submit_task(cpu_seconds, (task_seconds,)) for _ in range(TASKS)]
        assert [master.get_result(task)[1] for task in tasks] == [task_seconds] * TASKS
    return project.get_status()["sim_time"]


def test_the_boinc_model_predicts_a_real_batchs_makespan_within_25_percent(sandbox, tmp_path):
    measured, costs = run_on_sandbox(sandbox, tmp_path / "tasks")
    policy = sandbox_policy(sandbox, costs)
    no_rpc_delays = replace(policy, rpc_poll_period=0.0, rpc_latency=0.0)
    no_delays = replace(no_rpc_delays, download_delay=0.0, upload_delay=0.0, assimilation_delay=0.0)
    predicted = {
        "simulated": simulated_makespan(policy, costs.task),
        "without RPC delays": simulated_makespan(no_rpc_delays, costs.task),
        "reporting at once": simulated_makespan(
            replace(policy, report_immediately=True), costs.task
        ),
        "without any delay": simulated_makespan(no_delays, costs.task),
    }
    figures = "; ".join(f"{k} {v:.1f} s ({v / measured - 1:+.0%})" for k, v in predicted.items())
    print(f"\nmeasured {measured:.1f} s; {figures}; {costs}")
    assert abs(predicted["simulated"] - measured) <= TOLERANCE * measured, figures
    # The comparison can fail: a model that ignores the scheduler's delays is far off.
    assert abs(predicted["without RPC delays"] - measured) > TOLERANCE * measured, figures
    assert abs(predicted["without any delay"] - measured) > TOLERANCE * measured, figures
