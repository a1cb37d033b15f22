"""The grid simulator's BOINC model: scheduler RPCs, reporting, quorum, deadlines, quotas."""

from __future__ import annotations

import pytest

from pymw import pymw
from pymw.errors import UserError
from pymw.interfaces.grid_simulator import BoincPolicy, BoincProject, SimWorker


def cpu_seconds(worker, work):
    return work / worker.speed


def _batch(project, works):
    """Results (or the error's text) of a batch, and the project's prediction."""
    results = []
    with pymw.PyMW_Master(project, show_progress=False) as master:
        with project.hold():
            tasks = [master.submit_task(cpu_seconds, (work,)) for work in works]
        for task in tasks:
            try:
                results.append(master.get_result(task)[1])
            except RuntimeError as error:
                results.append(str(error))
    return results, project.get_status()


def _one_host_policy(**settings):
    settings = {"target_nresults": 1, "min_quorum": 1, **settings}
    return BoincPolicy(work_buf_min=150, work_buf_additional=1000, **settings)


def test_lazy_reporting_holds_a_result_until_the_next_work_request():
    lazy = BoincProject([SimWorker("h", 1.0)], _one_host_policy())
    results, status = _batch(lazy, [100.0] * 3)
    assert results == [100.0] * 3
    # The first result waits for the contact that asks for work, after the second.
    assert list(lazy.turnarounds) == [200.0, 200.0, 300.0]
    assert status["sim_time"] == 300.0
    eager = BoincProject([SimWorker("h", 1.0)], _one_host_policy(report_immediately=True))
    _batch(eager, [100.0] * 3)
    assert list(eager.turnarounds) == [100.0, 200.0, 300.0]


def test_a_quorum_of_two_sends_more_results_when_hosts_return_wrong_ones():
    hosts = [SimWorker(f"h{i}", 1.0 + i / 10) for i in range(6)]
    policy = BoincPolicy(target_nresults=2, min_quorum=2, wrong_result_rate=0.2, seed=3)
    project = BoincProject(hosts, policy)
    results, status = _batch(project, [60.0] * 50)
    assert all(isinstance(result, float) for result in results)
    assert status["num_executed_tasks"] == 50
    assert status["results_wrong"] > 0
    assert status["results_sent"] == 100 + status["results_wrong"]
    assert status["cpu_seconds"] > sum(results)  # every copy costs CPU, wrong ones too


def test_a_result_on_a_host_that_left_times_out_and_is_resent():
    leaving = SimWorker("leaving", 1.0, [(50.0, 1.0)])  # gone before it finishes
    policy = BoincPolicy(target_nresults=1, min_quorum=1, delay_bound=1000)
    project = BoincProject([leaving, SimWorker("stays", 1.0)], policy)
    # Both hosts ask at t=0; the task goes to the first to ask, the one that leaves.
    results, status = _batch(project, [100.0])
    assert results == [100.0]
    assert status["results_timed_out"] == 1
    assert status["sim_time"] > 1000.0


def test_too_many_error_results_fail_the_task():
    hosts = [SimWorker(f"h{i}", 1.0) for i in range(3)]
    policy = BoincPolicy(target_nresults=1, min_quorum=1, max_error_results=1, host_error_rate=0.9)
    results, status = _batch(BoincProject(hosts, policy), [10.0] * 10)
    assert any("too many error results" in str(result) for result in results)
    assert status["results_errored"] >= 2


def test_a_daily_quota_makes_the_rest_of_the_batch_wait_for_the_next_day():
    policy = _one_host_policy(daily_result_quota=2)
    results, status = _batch(BoincProject([SimWorker("h", 1.0)], policy), [10.0] * 3)
    assert results == [10.0] * 3
    assert status["sim_time"] > 86_400.0


def test_the_same_seed_gives_the_same_prediction():
    def predict(seed):
        hosts = [SimWorker(f"h{i}", 0.5 + i / 4) for i in range(8)]
        policy = BoincPolicy(min_quorum=2, host_error_rate=0.1, wrong_result_rate=0.1, seed=seed)
        return _batch(BoincProject(hosts, policy), [30.0 + i for i in range(40)])

    assert predict(1) == predict(1)
    assert predict(1) != predict(2)


def test_impossible_settings_are_user_errors():
    with pytest.raises(UserError, match="min_quorum"):
        BoincPolicy(target_nresults=1, min_quorum=2)
    with pytest.raises(UserError, match="needs hosts"):
        BoincProject([])


def test_min_sendwork_interval_and_max_wus_to_send_pace_a_host():
    # One job per contact, contacts 100 s apart: each 10 s job is reported 100 s apart.
    policy = _one_host_policy(max_wus_to_send=1, min_sendwork_interval=100)
    project = BoincProject([SimWorker("h", 1.0)], policy)
    assert _batch(project, [10.0] * 4)[0] == [10.0] * 4
    assert list(project.completion_times) == [100.0, 200.0, 300.0, 400.0]


@pytest.mark.parametrize(
    ("next_rpc_delay", "reported"), [(None, [200.0, 200.0]), (50, [100.0, 200.0])]
)
def test_a_next_rpc_delay_reports_lazy_results_sooner(next_rpc_delay, reported):
    policy = BoincPolicy(
        target_nresults=1, min_quorum=1, work_buf_min=5, next_rpc_delay=next_rpc_delay
    )
    project = BoincProject([SimWorker("h", 1.0)], policy)
    assert _batch(project, [100.0, 100.0])[0] == [100.0, 100.0]
    assert list(project.completion_times) == reported
