"""The BOINC model's hosts and fixed costs: CPUs per host, the client's scheduler polls,
file transfers, assimilation, and work fetch backed off at the start (checked against
real clients in tests/pymw/interfaces/boinc/test_grid_simulator_vs_sandbox.py)."""

from __future__ import annotations

import pytest

from pymw import pymw
from pymw.errors import UserError
from pymw.interfaces.grid_simulator import BoincPolicy, BoincProject, SimWorker


def cpu_seconds(worker, work):
    return work / worker.speed


def completion_times(policy: BoincPolicy, works: list[float]) -> list[float]:
    project = BoincProject([SimWorker("h", 1.0)], policy)
    with pymw.PyMW_Master(project, show_progress=False) as master:
        with project.hold():
            tasks = [master.submit_task(cpu_seconds, (work,)) for work in works]
        assert [master.get_result(task)[1] for task in tasks] == works
    return list(project.completion_times)


def one_host(**settings) -> BoincPolicy:
    return BoincPolicy(target_nresults=1, min_quorum=1, **settings)


@pytest.mark.parametrize(
    ("ncpus", "expected"), [(1, [100.0, 200.0, 300.0, 400.0]), (2, [100.0, 100.0, 200.0, 200.0])]
)
def test_a_host_runs_as_many_results_at_once_as_it_has_cpus(ncpus, expected):
    policy = one_host(host_ncpus=ncpus, report_immediately=True)
    assert completion_times(policy, [100.0] * 4) == expected


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # Contacts every next_rpc_delay: at 0, 8 and 16.
        ({}, [8.0, 16.0]),
        # The client looks every 5 s, from its last reply (half a period before the
        # first): a delay of 8 becomes 10.
        ({"rpc_poll_period": 5.0}, [12.5, 22.5]),
        # A host whose work fetch is not backed off asks again once idle, at its next look.
        ({"rpc_poll_period": 5.0, "initial_backoff": 0.0}, [7.5, 12.5]),
    ],
)
def test_the_clients_polls_pace_its_scheduler_contacts(settings, expected):
    settings = {"initial_backoff": 1e6, **settings}
    policy = one_host(max_wus_to_send=1, next_rpc_delay=8.0, work_buf_min=0.0, **settings)
    assert completion_times(policy, [1.0, 1.0]) == expected


def test_transfers_rpcs_and_assimilation_add_up_to_the_turnaround():
    policy = one_host(
        report_immediately=True,
        rpc_latency=1.0,
        download_delay=3.0,
        upload_delay=2.0,
        assimilation_delay=4.0,
    )
    # Contact at 0, reply at 1, inputs there at 4, ends at 14, uploaded at 16, reported
    # at 16 (reply 17), in the master at 21.
    assert completion_times(policy, [10.0]) == [21.0]


@pytest.mark.parametrize(
    ("setting", "value"), [("host_ncpus", 0), ("rpc_poll_period", -1.0), ("upload_delay", -1.0)]
)
def test_impossible_host_settings_are_user_errors(setting, value):
    with pytest.raises(UserError, match=setting):
        one_host(**{setting: value})
