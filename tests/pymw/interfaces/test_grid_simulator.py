"""The grid simulator: availability traces, policies, statistics and reproducibility."""

from __future__ import annotations

import math
import random
import types

import pytest

from pymw import pymw
from pymw.errors import UserError, WorkerLostError
from pymw.interfaces import grid_simulator as sim
from pymw.interfaces.grid_simulator import GridSimulatorInterface, SimWorker


def cpu_seconds(worker, work):
    return work / worker.speed


def not_a_number(worker):
    return "soon"


def broken(worker):
    raise ZeroDivisionError("no work")


def no_worker(seed, steps):
    return steps


def wrong_type_inside(worker, work):
    return work + "s"


def chatty(worker, work):
    print(f"working on {work}")
    return work


def _run(interface, works, scheduler_func=None):
    with pymw.PyMW_Master(interface, scheduler_func=scheduler_func, show_progress=False) as master:
        with interface.hold():
            tasks = [master.submit_task(cpu_seconds, (work,)) for work in works]
        results = [master.get_result(task)[1] for task in tasks]
    return results, interface.get_status()


def test_a_task_runs_only_while_its_worker_is_available():
    worker = SimWorker("w", 2.0, [(10, 1.0), (5, 0.0), (10, 0.5)])
    # 10 s at full speed gives 10 CPU-seconds; 5 s off; the last 2 at half rate take 4 s.
    assert worker.finish_time(0.0, 12.0) == pytest.approx(19.0)
    assert worker.available_from(11.0) == 15.0


def test_a_cycled_trace_repeats_and_an_ended_trace_leaves_the_grid():
    cycling = SimWorker("c", 1.0, [(10, 1.0), (10, 0.0)], cycle=True)
    assert cycling.finish_time(0.0, 25.0) == pytest.approx(45.0)
    leaving = SimWorker("l", 1.0, [(10, 1.0)])
    assert leaving.finish_time(0.0, 25.0) == math.inf
    assert leaving.available_from(12.0) == math.inf


def test_bad_workers_are_user_errors():
    with pytest.raises(UserError, match="speed"):
        SimWorker("w", 0, [(1, 1.0)])
    with pytest.raises(UserError, match="availability"):
        SimWorker("w", 1, [(1, 1.5)])


def test_first_come_simulated_time_and_statistics():
    interface = GridSimulatorInterface([SimWorker("a", 1.0), SimWorker("b", 2.0)])
    results, status = _run(interface, [4.0, 4.0, 4.0])
    assert results == [4.0, 2.0, 2.0]  # each task's CPU-seconds on the worker it got
    assert status["sim_time"] == pytest.approx(4.0)
    assert status["num_executed_tasks"] == 3
    assert status["total_cpu_time"] == pytest.approx(8.0)
    assert status["median_wall_time"] == pytest.approx(2.0)
    assert status["stddev_wall_time"] == pytest.approx(math.sqrt(8 / 9))


def test_fastest_worker_first_through_the_scheduler_func():
    workers = [SimWorker("slow", 1.0), SimWorker("fast", 4.0)]
    results, _ = _run(GridSimulatorInterface(workers), [8.0], sim.fastest_worker_first)
    assert results == [2.0]


def test_replicas_first_result_wins():
    workers = [SimWorker("slow", 1.0), SimWorker("fast", 4.0)]
    _, status = _run(GridSimulatorInterface(workers, replicas=2), [8.0])
    assert status["sim_time"] == pytest.approx(2.0)
    assert status["num_executed_tasks"] == 1


def test_same_seed_same_run():
    def run(seed):
        rng = random.Random(seed)
        interface = GridSimulatorInterface()
        interface.generate_workers(
            20,
            lambda _i: rng.uniform(0.5, 2),
            lambda _i: [(rng.uniform(5, 50), 1.0), (20, 0.0)],
            cycle=True,
        )
        return _run(interface, [rng.expovariate(0.1) for _ in range(300)])

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_task_errors_and_bad_return_values_fail_that_task():
    interface = GridSimulatorInterface([SimWorker("a", 1.0)])
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        with pytest.raises(ZeroDivisionError, match="no work"):
            master.get_result(master.submit_task(broken))
        with pytest.raises(TypeError, match="CPU-seconds"):
            master.get_result(master.submit_task(not_a_number))


def test_a_task_function_that_takes_no_worker_is_told_how_the_simulator_calls_it():
    """Any PyMW program runs with -i grid_simulator; one whose function takes no worker
    gets what the simulator expects, not the call's 'takes 2 positional arguments'."""
    interface = GridSimulatorInterface([SimWorker("a", 1.0)])
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        with pytest.raises(UserError, match=r"f\(worker, \*args\).*no_worker\(seed, steps\)"):
            master.get_result(master.submit_task(no_worker, (1, 2)))
        with pytest.raises(TypeError, match="unsupported operand") as raised:
            master.get_result(master.submit_task(wrong_type_inside, (3,)))
        assert not isinstance(raised.value, UserError)


def test_a_simulated_task_prints_into_its_own_stdout(capsys):
    """As on real workers: the task's prints are `task.stdout`, not the master's output."""
    interface = GridSimulatorInterface([SimWorker("a", 1.0)])
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        task = master.submit_task(chatty, (3.0,))
        assert master.get_result(task)[1] == 3.0
    assert task.stdout == "working on 3.0\n"
    assert "working on" not in capsys.readouterr().out


def test_a_worker_that_leaves_mid_task_loses_it():
    interface = GridSimulatorInterface([SimWorker("brief", 1.0, [(3, 1.0)])])
    with (
        pymw.PyMW_Master(interface, show_progress=False) as master,
        pytest.raises(WorkerLostError, match="left the grid"),
    ):
        master.get_result(master.submit_task(cpu_seconds, (10.0,)))


def test_fta_trace_replays_availability(tmp_path):
    trace = tmp_path / "event_trace.tab"
    columns = (
        "event_id component_id node_id platform_id node_name event_type "
        "event_start_time event_stop_time event_end_reason"
    )
    rows = [
        "1 0 n1 0 host1 1 100 110 0",
        "2 0 n1 0 host1 0 110 130 0",
        "3 0 n1 0 host1 1 130 200 0",
        "4 0 n2 0 host2 1 105 300 0",
    ]
    trace.write_text(
        "\t".join(columns.split()) + "\n" + "\n".join("\t".join(r.split()) for r in rows)
    )
    workers = sim.read_fta_workers(trace)
    assert [worker.name for worker in workers] == ["n1", "n2"]
    # n1: up 0..10, down 10..30, up 30..100 (times relative to the earliest event).
    assert workers[0].finish_time(0.0, 15.0) == pytest.approx(35.0)
    assert workers[1].available_from(0.0) == pytest.approx(5.0)
    assert len(sim.read_fta_workers(trace, num_workers=1)) == 1


def test_fta_trace_without_the_columns_is_a_user_error(tmp_path):
    trace = tmp_path / "bad.tab"
    trace.write_text("a\tb\n1\t2\n")
    with pytest.raises(UserError, match="not an FTA event trace"):
        sim.read_fta_workers(trace)


def test_the_product_path_agrees_with_a_plain_simpy_model():
    simpy = pytest.importorskip("simpy")
    rng = random.Random(3)
    speeds = [rng.uniform(0.5, 2) for _ in range(10)]
    work = [rng.expovariate(1.0) for _ in range(500)]
    env = simpy.Environment()
    queue = list(reversed(work))

    def pull(speed):
        while queue:
            yield env.timeout(queue.pop() / speed)

    for speed in speeds:
        env.process(pull(speed))
    env.run()
    interface = GridSimulatorInterface([SimWorker(str(i), s) for i, s in enumerate(speeds)])
    _, status = _run(interface, work)
    assert status["sim_time"] == pytest.approx(env.now, rel=1e-12)
    assert status["num_executed_tasks"] == 500


def test_from_options_builds_n_workers():
    class Options:
        num_workers = 3

    assert GridSimulatorInterface.from_options(Options()).num_workers == 3


def scaled_cpu_seconds(worker, work, *, scale=1.0):
    return scale * work / worker.speed


def test_keyword_arguments_reach_a_simulated_task():
    import pymw as package

    interface = GridSimulatorInterface([SimWorker("a", 2.0)])
    with package.Executor(interface=interface) as pool:
        plain = pool.submit(scaled_cpu_seconds, 4.0).result()
        scaled = pool.submit(scaled_cpu_seconds, 4.0, scale=3.0).result()
    assert (plain, scaled) == (2.0, 6.0)


def test_executor_map_chunks_run_as_one_simulated_task_each():
    # A chunk is one task on one worker: each row gets the worker, as a task does, and
    # the chunk takes its rows' CPU-seconds in all.
    import pymw as package

    interface = GridSimulatorInterface([SimWorker("a", 1.0), SimWorker("b", 2.0)])
    with package.Executor(interface=interface) as pool:
        results = list(pool.map(cpu_seconds, [1.0, 2.0, 3.0, 4.0, 5.0], chunksize=2))
    # a runs [1, 2] then [5] (3 s + 5 s); b runs [3, 4] at twice the speed (3.5 s).
    assert results == [1.0, 2.0, 1.5, 2.0, 5.0]
    assert interface.get_status()["sim_time"] == 8.0


def cpu_seconds_of_record(worker, record):
    return record.work / worker.speed


def test_arguments_reach_a_simulated_task_as_submitted(tmp_path):
    # Nothing travels, so nothing is encoded: an object the worker contract could not
    # carry is fine here. An input file is still decoded.
    from pyboinc import contract

    record = types.SimpleNamespace(work=6.0)
    path = tmp_path / "input.json"
    path.write_bytes(contract.encode_input((8.0,)))
    interface = GridSimulatorInterface([SimWorker("a", 2.0)])
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        from_record = master.submit_task(cpu_seconds_of_record, (record,))
        from_file = master.submit_task(cpu_seconds, str(path), input_from_file=True)
        assert master.get_result(from_record)[1] == 3.0
        assert master.get_result(from_file)[1] == 4.0
