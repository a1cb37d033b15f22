"""The PyMW 0.4 face (`PyMW_Master`) on the generic interface with real worker processes."""

import concurrent.futures
import sys
import threading
import time
import zipfile
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
import tasks_for_tests as t

from pyboinc import contract
from pymw import pymw
from pymw.errors import BrokenMasterError, RemoteTraceback, TaskError, UserError, WorkerLostError
from pymw.interfaces.generic import PERSISTENT_PREFETCH, GenericInterface


@pytest.fixture
def master():
    with pymw.PyMW_Master(GenericInterface(num_workers=2), show_progress=False) as master:
        yield master


def test_get_result_for_one_task(master):
    task = master.submit_task(t.square, input_data=(7,))
    finished, result = master.get_result(task)
    assert finished is task
    assert result == 49


def test_get_result_for_any_task_returns_each_once(master):
    tasks = [master.submit_task(t.square, input_data=(i,)) for i in range(10)]
    results = {}
    for _ in tasks:
        task, result = master.get_result()
        results[task.task_id] = result
    assert sorted(results.values()) == [i * i for i in range(10)]
    assert set(results) == {task.task_id for task in tasks}


def test_get_result_for_a_list_returns_one_of_the_list(master):
    slow = master.submit_task(t.slow_square, input_data=(3, 1.0))
    fast = master.submit_task(t.square, input_data=(4,))
    task, result = master.get_result([slow, fast])
    assert (task, result) == (fast, 16)


def test_non_blocking_get_result_returns_none_until_done(master):
    task = master.submit_task(t.slow_square, input_data=(5, 0.5))
    assert master.get_result(task, blocking=False) == (None, None)
    assert master.get_result(task) == (task, 25)


def test_builtin_error_is_reraised_with_remote_traceback(master):
    task = master.submit_task(t.divide, input_data=(1, 0))
    with pytest.raises(ZeroDivisionError) as raised:
        master.get_result(task)
    cause = raised.value.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "in divide" in cause.traceback_text
    assert "return a / b" in cause.traceback_text


@pytest.mark.parametrize("fresh_process", [False, True])
def test_a_fresh_process_tasks_traceback_shows_its_lines_as_a_persistent_ones_does(
    fresh_process,
):
    interface = GenericInterface(num_workers=1, fresh_process=fresh_process)
    with (
        pymw.PyMW_Master(interface, show_progress=False) as master,
        pytest.raises(ZeroDivisionError) as raised,
    ):
        master.get_result(master.submit_task(t.divide, input_data=(1, 0)))
    assert "return a / b" in raised.value.__cause__.traceback_text


@pytest.mark.parametrize("fresh_process", [False, True])
def test_task_code_that_fails_to_set_up_is_the_tasks_error_not_a_lost_worker(fresh_process):
    """An import the worker lacks fails the task with that ImportError, on every kind of
    worker, and is not retried as a worker that died would be."""
    interface = GenericInterface(num_workers=1, fresh_process=fresh_process)
    with pymw.PyMW_Master(interface, max_retries=2, show_progress=False) as master:
        task = master.submit_task(t.square, (2,), modules=("pymw_no_such_module",))
        with pytest.raises(ModuleNotFoundError, match="pymw_no_such_module") as raised:
            master.get_result(task)
    assert task.attempts == 1
    assert "import pymw_no_such_module" in raised.value.__cause__.traceback_text


def test_custom_error_becomes_task_error_with_traceback(master):
    task = master.submit_task(t.fail_with_custom_error)
    with pytest.raises(TaskError, match="LocalProblem: something specific") as raised:
        master.get_result(task)
    assert "fail_with_custom_error" in str(raised.value.__cause__)


def test_killed_worker_fails_only_its_task_and_is_replaced(master):
    doomed = master.submit_task(t.die_hard)
    others = [master.submit_task(t.square, input_data=(i,)) for i in range(6)]
    with pytest.raises(BrokenProcessPool, match="signal 9") as raised:  # as CPython's
        master.get_result(doomed)
    assert isinstance(raised.value, WorkerLostError)
    assert [master.get_result(task)[1] for task in others] == [i * i for i in range(6)]
    assert master.get_status()["interface"]["workers_alive"] == 2


def test_dead_worker_task_is_retried_when_asked(tmp_path):
    interface = GenericInterface(num_workers=1)
    with pymw.PyMW_Master(interface, max_retries=1, show_progress=False) as master:
        task = master.submit_task(t.die_once, input_data=(str(tmp_path / "marker"),))
        assert master.get_result(task)[1] == "second try"
        assert task.attempts == 2


@pytest.mark.parametrize(("fresh_process", "raised"), [(False, SystemExit), (True, TaskError)])
def test_system_exit_is_itself_only_from_the_users_own_workers(fresh_process, raised):
    # Persistent workers are the user's processes, as ProcessPoolExecutor's are; fresh
    # processes decode only the safe codec, like a volunteer's, which must not end the master.
    interface = GenericInterface(num_workers=1, fresh_process=fresh_process)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        task = master.submit_task(sys.exit, input_data=(3,))
        with pytest.raises(raised, match="3"):
            master.get_result(task)


def test_worker_stdout_is_captured(master):
    task = master.submit_task(t.chatty, input_data=(3,))
    master.get_result(task)
    assert task.stdout == "hello from the worker 3\n"


def test_modules_and_dep_funcs_reach_the_worker(master):
    with_module = master.submit_task(t.use_module, modules=("math",))
    with_helper = master.submit_task(t.uses_helper, dep_funcs=(t.helper_value,))
    assert master.get_result(with_module)[1] == 4.0
    assert master.get_result(with_helper)[1] == 42


def test_result_types_survive_the_safe_codec(master):
    value = (1, 2.5, "s", b"\x00\xff", [1, (2, 3)], {"k": {1, 2}}, {(1, 2): None}, 1 + 2j)
    task = master.submit_task(t.echo, input_data=value)
    assert master.get_result(task)[1] == value


def test_a_result_that_cannot_travel_is_a_clear_task_error(master):
    task = master.submit_task(t.unsendable)
    with pytest.raises(TypeError, match="cannot carry a object"):
        master.get_result(task)


def test_data_files_are_unpacked_next_to_the_task(master, tmp_path):
    data = tmp_path / "words.txt"
    data.write_text("alpha beta\n")
    task = master.submit_task(t.read_data_file, input_data=("words.txt",), data_files=[data])
    assert master.get_result(task)[1] == "alpha beta\n"


def test_fresh_process_mode_runs_data_files_and_errors(tmp_path):
    data = tmp_path / "words.txt"
    data.write_text("gamma\n")
    interface = GenericInterface(num_workers=2, fresh_process=True)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        ok = master.submit_task(t.read_data_file, input_data=("words.txt",), data_files=[data])
        bad = master.submit_task(t.divide, input_data=(1, 0))
        killed = master.submit_task(t.die_hard)
        assert master.get_result(ok)[1] == "gamma\n"
        with pytest.raises(ZeroDivisionError):
            master.get_result(bad)
        with pytest.raises(WorkerLostError, match="signal 9"):
            master.get_result(killed)


def test_zip_slip_archive_sent_with_a_task_is_refused(tmp_path):
    """A hostile data archive reaching a worker writes nothing outside its folder."""
    import subprocess
    import sys

    from pyboinc import contract
    from pymw.programs import program_from_function

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escaped.txt", "gotcha")
    slot = tmp_path / "slot"
    slot.mkdir()
    (slot / "task.py").write_text(program_from_function(t.read_data_file).script)
    (slot / "in").write_bytes(contract.encode_input(("x",), "../evil.zip"))
    run = subprocess.run(
        [sys.executable, "task.py", "in", "out"], cwd=slot, capture_output=True, text=True
    )
    assert run.returncode == contract.EXIT_BAD_INPUT
    assert "escapes its folder" in run.stderr
    assert not (tmp_path / "escaped.txt").exists()


def test_map_reduce_splits_maps_and_reduces():
    interface = GenericInterface(num_workers=2)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        mapreduce = pymw.PyMW_MapReduce(master)
        lines = [f"{'w ' * n}".strip() for n in range(1, 11)]
        task = mapreduce.submit_task_mapreduce(
            t.count_words, t.total, num_worker=3, input_data=lines, red_worker=2
        )
        finished, result = master.get_result(task)
    assert finished is task
    assert result == [sum(range(1, 6)), sum(range(6, 11))]


def test_map_reduce_with_one_reduce_per_map():
    with pymw.PyMW_Master(GenericInterface(num_workers=2), show_progress=False) as master:
        task = pymw.PyMW_MapReduce(master).submit_task_mapreduce(
            t.count_words, t.total, num_worker=4, input_data=["a b", "c", "d e f", "g"]
        )
        assert master.get_result(task)[1] == [2, 1, 3, 1]


@pytest.mark.parametrize(("red_worker", "expected"), [(-1, [0.4, 0.0, 0.2]), (2, [0.4, 0.2])])
def test_map_reduce_results_keep_the_chunks_order_not_the_order_tasks_end(red_worker, expected):
    """The first map ends last, the second first: the results are still in chunk order
    (reduces of [0.4], [0.0], [0.2]; or of [0.4, 0.0] and [0.2])."""
    with pymw.PyMW_Master(GenericInterface(num_workers=2), show_progress=False) as master:
        task = pymw.PyMW_MapReduce(master).submit_task_mapreduce(
            t.slow_identity, t.total, 3, input_data=[0.4, 0.0, 0.2], red_worker=red_worker
        )
        assert master.get_result(task)[1] == expected


def test_map_reduce_over_files_named_relative_to_the_master(master, tmp_path, monkeypatch):
    """file_input=True: each map reads its byte ranges, though it runs in another folder."""
    monkeypatch.chdir(tmp_path)
    Path("a.txt").write_bytes(b"x" * 1000)
    Path("b.txt").write_bytes(b"y" * 500)
    task = pymw.PyMW_MapReduce(master).submit_task_mapreduce(
        t.count_bytes, t.total, 3, input_data=["a.txt", ["b.txt"]], file_input=True
    )
    assert master.get_result(task)[1] == [500, 500, 500]


def test_map_reduce_over_a_missing_file_is_a_user_error(master, tmp_path):
    with pytest.raises(UserError, match=f"file_input: cannot read {tmp_path}/gone.txt: No such"):
        pymw.PyMW_MapReduce(master).submit_task_mapreduce(
            t.count_bytes, t.total, 2, input_data=[tmp_path / "gone.txt"], file_input=True
        )


def test_get_result_hands_out_a_map_reduce_but_never_its_map_and_reduce_tasks(master):
    task = pymw.PyMW_MapReduce(master).submit_task_mapreduce(
        t.count_words, t.total, num_worker=3, input_data=["a b", "c", "d e f"]
    )
    plain = master.submit_task(t.square, input_data=(4,))
    handed_out = {master.get_result()[0] for _ in range(2)}
    assert handed_out == {task, plain}
    assert (task.progress, task.error, task.result) == (1.0, None, [2, 1, 3])
    with pytest.raises(UserError, match="no task is pending"):
        master.get_result()


def test_status_counts_tasks_and_workers(master):
    tasks = [master.submit_task(t.slow_square, input_data=(i, 1.0)) for i in range(4)]
    deadline = time.monotonic() + 0.5  # well before the first task ends
    while master.get_status()["workers"]["active"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    status = master.get_status()
    assert status["workers"] == {"total": 2, "active": 2}
    assert status["tasks"]["running"] + status["tasks"]["queued"] == 4
    for task in tasks:
        master.get_result(task)
    status = master.get_status()
    assert status["tasks"]["finished"] == 4
    assert status["workers"]["active"] == 0
    assert master.get_progress(tasks[0]) == 1.0


def test_scheduler_func_picks_task_and_worker():
    picked = []

    def last_task_first(task_list, worker_list):
        picked.append(task_list[-1].name)
        return task_list[-1], worker_list[0]

    interface = GenericInterface(num_workers=1)
    with pymw.PyMW_Master(interface, scheduler_func=last_task_first, show_progress=False) as m:
        # Long tasks first fill the worker (it holds PERSISTENT_PREFETCH jobs), so that the
        # next four wait in the queue together, however the dispatcher interleaves with
        # the submissions, and the policy alone orders them.
        fillers = [
            m.submit_task(t.slow_square, input_data=(i, 0.5)) for i in range(PERSISTENT_PREFETCH)
        ]
        deadline = time.monotonic() + 30
        while m.get_status()["tasks"]["running"] < len(fillers):
            assert time.monotonic() < deadline, m.get_status()
            time.sleep(0.01)
        tasks = [m.submit_task(t.slow_square, input_data=(i, 0.01)) for i in range(4)]
        order = [m.get_result()[0] for _ in fillers + tasks]
    assert order[len(fillers) :] == tasks[::-1]
    assert picked[-4:] == [task.name for task in tasks[::-1]]


@pytest.mark.parametrize(
    "policy",
    [lambda tasks, workers: None, lambda tasks, workers: (tasks[0],), lambda t, w: ("x", w[0])],
)
def test_a_scheduler_func_that_picks_no_pair_breaks_the_master_saying_so(policy):
    interface = GenericInterface(num_workers=1)
    refused = r"scheduler_func returned .*; it must return \(task, worker\)"
    with (
        pymw.PyMW_Master(interface, scheduler_func=policy, show_progress=False) as m,
        pytest.raises(BrokenMasterError, match=refused),
    ):
        m.get_result(m.submit_task(t.square, input_data=(2,)))


def test_user_mistakes_are_one_line_user_errors(master):
    with pytest.raises(UserError, match="tuple of arguments"):
        master.submit_task(t.square, input_data=3)
    with pytest.raises(UserError, match="lambdas"):
        master.submit_task(lambda: 1)
    with pytest.raises(UserError, match="does not exist"):
        master.submit_task(t.square, input_data=(1,), data_files=["/no/such/file"])
    with pytest.raises(UserError, match="not a task submitted"):
        master.get_result("nope")
    with pytest.raises(UserError, match="no task is pending"):
        master.get_result()


def test_executor_with_as_completed():
    with pymw.Executor(interface=GenericInterface(num_workers=2)) as pool:
        futures = {pool.submit(t.square, i): i for i in range(20)}
        seen = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures)}
        assert seen == {i: i * i for i in range(20)}
        assert list(pool.map(t.square, range(5))) == [0, 1, 4, 9, 16]
        failing = pool.submit(t.divide, 1, 0)
        with pytest.raises(ZeroDivisionError):
            failing.result()
        assert isinstance(failing.exception().__cause__, RemoteTraceback)


def test_executor_cancels_queued_futures_on_shutdown():
    pool = pymw.Executor(interface=GenericInterface(num_workers=1))
    futures = [pool.submit(t.slow_square, i, 0.2) for i in range(6)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert any(f.cancelled() for f in futures)
    assert all(f.done() for f in futures)
    with pytest.raises(RuntimeError):
        pool.submit(t.square, 1)


# ------------------------------------------------------- hangs and crashes (issue 11)


def _returns_within(seconds: float, call) -> bool:
    """Run `call` in a thread; True if it returned in time."""
    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_shutdown_returns_after_pending_futures_were_cancelled():
    pool = pymw.Executor(interface=GenericInterface(num_workers=1))
    futures = [pool.submit(t.slow_square, i, 0.2) for i in range(5)]
    cancelled = [future for future in futures[2:] if future.cancel()]
    assert cancelled, "nothing was left pending to cancel"
    try:
        assert _returns_within(20, pool.shutdown), "shutdown(wait=True) hung"
    finally:
        pool._master.terminate()
    assert [future.result() for future in futures[:2]] == [0, 1]


def test_leaving_the_with_block_after_a_map_timeout_returns():
    def time_out_in_map():
        with (
            pymw.Executor(interface=GenericInterface(num_workers=1)) as pool,
            pytest.raises(TimeoutError),
        ):
            list(pool.map(t.slow_square, range(6), [0.3] * 6, timeout=0.1))

    assert _returns_within(20, time_out_in_map), "the with block never ended"


def test_executor_requeues_the_jobs_behind_a_dead_worker():
    with pymw.Executor(interface=GenericInterface(num_workers=1), max_retries=0) as pool:
        doomed = pool.submit(t.die_hard)
        behind = [pool.submit(t.square, i) for i in range(3)]
        with pytest.raises(WorkerLostError, match="signal 9"):
            doomed.result(timeout=30)
        assert [future.result(timeout=30) for future in behind] == [0, 1, 4]


def test_pymw_master_requeues_the_jobs_behind_a_dead_worker():
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=False) as master:
        doomed = master.submit_task(t.die_hard)
        behind = [master.submit_task(t.square, input_data=(i,)) for i in range(3)]
        with pytest.raises(WorkerLostError, match="signal 9"):
            master.get_result(doomed)
        assert [master.get_result(task)[1] for task in behind] == [0, 1, 4]


def test_a_short_task_queued_behind_a_never_ending_one_runs_on_the_idle_worker():
    with pymw.PyMW_Master(GenericInterface(num_workers=2), show_progress=False) as master:
        master.submit_task(t.slow_square, input_data=(0, 600))
        short = [master.submit_task(t.square, input_data=(i,)) for i in range(1, 6)]
        deadline = time.monotonic() + 20
        results = {}
        while len(results) < len(short) and time.monotonic() < deadline:
            task, result = master.get_result(short, blocking=False)
            if task is None:
                time.sleep(0.05)
            else:
                results[task.task_id] = result
        assert sorted(results.values()) == [1, 4, 9, 16, 25]


def test_at_a_batchs_end_a_long_task_queued_behind_another_runs_on_the_idle_worker():
    # Three long tasks on two workers: the third is sent ahead to the first worker, behind
    # a task twice as long. Once the second worker is done it takes the third, as a
    # ProcessPoolExecutor worker would, instead of idling while it waits its turn.
    with pymw.Executor(2) as pool:
        started = time.monotonic()
        first, second, third = pool.map(t.nap_then_pid, [2.0, 1.0, 1.0])
        elapsed = time.monotonic() - started
    assert third == second != first
    assert elapsed < 2.8  # not 3 s: the first worker's two tasks one after the other


def test_a_failure_while_handling_a_result_fails_that_task_too(monkeypatch):
    """A bug met while decoding one result breaks the master; no future is left pending."""

    def broken_decoder(*args, **kwargs):
        raise RuntimeError("a bug in the decoder")

    monkeypatch.setattr(contract, "decode_output", broken_decoder)
    with pymw.Executor(interface=GenericInterface(num_workers=1)) as pool:
        futures = [pool.submit(t.square, i) for i in range(3)]
        for future in futures:
            with pytest.raises(BrokenMasterError, match="a bug in the decoder"):
                future.result(timeout=30)
