"""`pymw.Executor` as a drop-in ProcessPoolExecutor, on the generic interface's real
worker processes. The task functions below live in this test module, which the workers
cannot import: they travel as source, with the module-level names they use."""

import concurrent.futures
import math
import os
import subprocess
import sys
import textwrap
import time

import pytest

import pymw
from pymw.interfaces.generic import GenericInterface

OFFSET = 100


class Overdrawn(Exception):
    """A user-defined exception, raised on the worker."""


def add_offset(x, *, scale=1):
    return x * scale + OFFSET


def withdraw(balance, amount):
    if amount > balance:
        raise Overdrawn(balance, amount)
    return balance - amount


def pause_then_return(seconds, value):
    time.sleep(seconds)
    return value


@pytest.fixture(scope="module")
def pool():
    with pymw.Executor(2) as executor:
        yield executor


def test_builtins_and_installed_functions_run_by_reference(pool):
    assert pool.submit(pow, 2, 8).result() == 256
    assert pool.submit(math.sqrt, 16.0).result() == 4.0
    assert pool.submit(time.sleep, 0).result() is None
    assert pool.submit(os.path.join, "a", "b").result() == os.path.join("a", "b")
    assert pool.submit(os.getpid).result() != os.getpid()


def test_keyword_arguments_reach_the_function(pool):
    assert pool.submit(add_offset, 2, scale=10).result() == 120
    assert pool.submit(sorted, [3, 1, 2], reverse=True).result() == [3, 2, 1]
    assert pool.submit(dict, fn=1, self=2).result() == {"fn": 1, "self": 2}


def test_keyword_arguments_reach_a_fresh_process_task_through_the_files():
    fresh = GenericInterface(num_workers=1, fresh_process=True)
    with pymw.Executor(interface=fresh) as executor:
        assert executor.submit(add_offset, 2, scale=10).result() == 120


def test_module_level_names_and_user_exceptions_travel_with_the_function(pool):
    assert pool.submit(withdraw, 10, 3).result() == 7
    error = pool.submit(withdraw, 1, 5).exception()
    assert type(error) is Overdrawn
    assert error.args == (1, 5)


def test_map_batches_in_order_over_several_iterables(pool):
    expected = list(map(pow, range(40), range(3, 33)))
    for chunksize in (1, 6, 30, 50):
        assert list(pool.map(pow, range(40), range(3, 33), chunksize=chunksize)) == expected
    assert list(pool.map(pow, [], chunksize=4)) == []


def test_a_map_chunk_is_one_task(pool):
    before = pool.status()["tasks"]["total"]
    list(pool.map(abs, range(100), chunksize=25))
    assert pool.status()["tasks"]["total"] - before == 4


def test_map_raises_a_tasks_error_when_its_item_is_reached(pool):
    results = pool.map(divmod, [1, 1, 1, 1], [2, 3, 0, 5])
    assert next(results) == (0, 1)
    assert next(results) == (0, 1)
    with pytest.raises(ZeroDivisionError):
        next(results)


def test_map_timeout_counts_from_the_call_and_cancels_the_rest():
    with pymw.Executor(1) as executor:
        started = time.monotonic()
        results = executor.map(pause_then_return, [0.0, 3.0, 0.0, 0.0], "abcd", timeout=1.0)
        assert next(results) == "a"
        with pytest.raises(concurrent.futures.TimeoutError):
            next(results)
        assert time.monotonic() - started < 2.5


def test_closing_the_map_iterator_cancels_the_chunks_not_reached():
    # As ProcessPoolExecutor.map's generator does, close() stops the rest.
    with pymw.Executor(1) as executor:
        started = time.monotonic()
        results = executor.map(pause_then_return, [0.2] + [0.5] * 8, "abcdefghi")
        assert next(results) == "a"
        results.close()
        assert list(results) == []  # closed: nothing more, as a closed generator
        executor.shutdown(wait=True)
        assert executor.status()["tasks"]["cancelled"] >= 5
        assert time.monotonic() - started < 3.0


def test_dropping_the_map_iterator_cancels_the_chunks_not_reached():
    # As for ProcessPoolExecutor.map: a result iterator nobody holds any more stops the
    # rest, without close(), so a loop left by `break` does not run the whole map.
    with pymw.Executor(1) as executor:
        started = time.monotonic()
        results = executor.map(pause_then_return, [0.2] + [0.5] * 8, "abcdefghi")
        for letter in results:
            assert letter == "a"
            break
        del results, letter
        executor.shutdown(wait=True)
        assert executor.status()["tasks"]["cancelled"] >= 5
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("chunksize", [0, -1])
def test_chunksize_below_one_is_a_value_error(pool, chunksize):
    with pytest.raises(ValueError, match="chunksize must be >= 1"):
        pool.map(abs, range(3), chunksize=chunksize)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_workers": 0}, ValueError, "max_workers must be greater than 0"),
        ({"max_workers": -1}, ValueError, "max_workers must be greater than 0"),
        ({"initializer": 3}, TypeError, "initializer must be a callable"),
        ({"max_tasks_per_child": 1.5}, TypeError, "max_tasks_per_child must be an integer"),
        ({"max_tasks_per_child": 0}, ValueError, "max_tasks_per_child must be >= 1"),
    ],
)
def test_pool_options_are_checked_as_processpoolexecutor_does(options, error, message):
    with pytest.raises(error, match=message):
        pymw.Executor(**options)


def test_max_workers_sizes_the_default_engine_and_must_match_a_given_one():
    with pymw.Executor(3) as executor:
        assert executor.interface.num_workers == 3
    with pytest.raises(ValueError, match="max_workers=2, but the interface runs 1"):
        pymw.Executor(2, interface=GenericInterface(num_workers=1))


def test_an_interface_as_first_argument_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="interface="):
        executor = pymw.Executor(GenericInterface(num_workers=1))
    with executor:
        assert executor.submit(abs, -3).result() == 3


def test_worker_lost_is_a_broken_process_pool_without_importing_multiprocessing():
    # What ProcessPoolExecutor code catches; its module imports multiprocessing, which
    # `import pymw` leaves out, so the class is made on first use.
    code = (
        "import sys, pymw\n"
        "assert 'multiprocessing' not in sys.modules\n"
        "from concurrent.futures.process import BrokenProcessPool\n"
        "assert issubclass(pymw.WorkerLostError, BrokenProcessPool)\n"
        "from pymw.errors import WorkerLostError\n"
        "assert WorkerLostError is pymw.WorkerLostError\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_submit_and_map_after_shutdown_are_runtime_errors():
    executor = pymw.Executor(1)
    executor.shutdown()
    with pytest.raises(RuntimeError, match="cannot schedule new futures after shutdown"):
        executor.submit(pow, 2, 5)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.map(abs, [1])


def test_shutdown_cancelling_futures_still_runs_what_free_workers_take_at_once():
    # As ProcessPoolExecutor's: calls its workers have room for are started the moment
    # they are submitted, so a shutdown(cancel_futures=True) right after cancels the rest.
    executor = pymw.Executor(2)
    assert list(executor.map(pause_then_return, [0.1, 0.1], "ab")) == ["a", "b"]  # workers up
    futures = [executor.submit(pause_then_return, 0.1, index) for index in range(20)]
    executor.shutdown(cancel_futures=True)
    ran = [future for future in futures if not future.cancelled()]
    assert 1 <= len(ran) <= 4  # for tasks this long, two each (PERSISTENT_PREFETCH)
    assert [future.result(timeout=0) for future in ran] == [futures.index(f) for f in ran]


def test_initializer_runs_in_every_worker_before_its_tasks():
    from tasks_for_tests import get_environment, set_environment

    with pymw.Executor(
        2, initializer=set_environment, initargs=("PYMW_TEST_INIT", "done")
    ) as executor:
        values = [executor.submit(get_environment, "PYMW_TEST_INIT") for _ in range(6)]
        assert [future.result() for future in values] == ["done"] * 6


def test_max_tasks_per_child_replaces_the_worker_process():
    with pymw.Executor(1, max_tasks_per_child=2) as executor:
        pids = [executor.submit(os.getpid).result() for _ in range(4)]
    assert pids[0] == pids[1] != pids[2] == pids[3]


def test_a_failing_initializer_breaks_the_executor():
    from tasks_for_tests import fail_to_initialize

    executor = pymw.Executor(1, initializer=fail_to_initialize)
    future = executor.submit(abs, 1)
    with pytest.raises(concurrent.futures.BrokenExecutor):
        future.result(timeout=30)
    with pytest.raises(concurrent.futures.BrokenExecutor):
        executor.submit(abs, 1)
    executor.shutdown()


# ----------------------------------------------------- a user's script, run as python


def run_script(tmp_path, source: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `source` as a user's script, in a folder of its own."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_scripts_own_functions_classes_and_constants_travel(tmp_path):
    (tmp_path / "physics.py").write_text("G = 9.81\n\ndef fall(t):\n    return G * t * t / 2\n")
    done = run_script(
        tmp_path,
        """
        import dataclasses, math
        import pymw
        from physics import fall

        HEIGHTS = (5.0, 20.0)

        @dataclasses.dataclass
        class Drop:
            height: float

            def seconds(self):
                return math.sqrt(2 * self.height / fall(1.0) / 2)

        def time_to_ground(index):
            return round(Drop(HEIGHTS[index]).seconds(), 3)

        if __name__ == "__main__":
            with pymw.Executor(2) as pool:
                print(list(pool.map(time_to_ground, range(len(HEIGHTS)))))
                # A method of the script's class, as ProcessPoolExecutor takes it.
                print([round(s, 3) for s in pool.map(Drop.seconds, map(Drop, HEIGHTS))])
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["[1.01, 2.019]", "[1.01, 2.019]"]


def test_at_exit_without_shutdown_queued_and_running_tasks_finish(tmp_path):
    done = run_script(
        tmp_path,
        """
        import os, time
        import pymw

        def mark(name, seconds):
            time.sleep(seconds)
            open(name, "w").close()

        pool = pymw.Executor(1)
        pool.submit(mark, os.path.abspath("running"), 1.0)
        for i in range(3):
            pool.submit(mark, os.path.abspath(f"queued-{i}"), 0.0)
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sorted(path.name for path in tmp_path.iterdir() if path.suffix != ".py") == [
        "queued-0",
        "queued-1",
        "queued-2",
        "running",
    ]


def test_submit_after_interpreter_shutdown_is_a_runtime_error(tmp_path):
    done = run_script(
        tmp_path,
        """
        import atexit
        import pymw

        @atexit.register
        def late():
            try:
                pool.submit(abs, 1)
            except RuntimeError as error:
                print(error)

        pool = pymw.Executor(1)
        pool.submit(abs, 1).result()
        """,
    )
    assert done.stdout.strip() == "cannot schedule new futures after interpreter shutdown"


def test_del_lets_the_workers_stop_once_idle_and_pending_results_still_come(tmp_path):
    done = run_script(
        tmp_path,
        """
        import gc, os, time
        import pymw

        pool = pymw.Executor(2)
        pool.submit(abs, 0).result()
        pids = pool.status()["interface"]["worker_pids"]
        results = pool.map(abs, range(-5, 5))
        del pool
        gc.collect()
        print(list(results))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
            time.sleep(0.05)
        print(len(pids), [p for p in pids if os.path.exists(f"/proc/{p}")])
        """,
    )
    assert done.returncode == 0, done.stderr
    results, workers = done.stdout.strip().splitlines()
    assert results == str([abs(x) for x in range(-5, 5)])
    assert workers == "2 []"
