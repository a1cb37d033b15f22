"""The MPI interface: wire format and options (fast), real MPICH ranks (slow).

The slow tests need `pip install mpi4py mpich`; they start real ranks in both launch
styles, always under a timeout, and check that no hub process group is left behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")

from pymw import Executor, pymw
from pymw.errors import UserError, WorkerLostError
from pymw.interfaces import mpi
from pymw_worker import inbox

ROOT = Path(__file__).resolve().parents[3]
INTERPRETER_BIN = Path(sys.executable).parent
MPIEXEC = INTERPRETER_BIN / "mpiexec"
RUN_TIMEOUT = 120


def triple(x):
    return 3 * x


def fail_with(message):
    raise ValueError(message)


def read_data(name):
    with open(name) as handle:
        return handle.read()


def sleep_then(x, seconds):
    import time

    time.sleep(seconds)
    return 3 * x


def set_environment(name, value):
    import os

    os.environ[name] = value


def get_environment(name):
    import os

    return os.environ.get(name)


def loaded_pymw_modules():
    import sys

    return sorted(name for name in sys.modules if name == "pymw" or name.startswith("pymw."))


def kill_own_process():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _environment() -> dict[str, str]:
    # MPICH without mpiexec runs the first `mpiexec` on PATH: use the `mpich` wheel's.
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    environment["PATH"] = os.pathsep.join([str(INTERPRETER_BIN), environment["PATH"]])
    return environment


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=ROOT,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        start_new_session=True,
    )


def _pi(output: str) -> float:
    return float(re.search(r"Estimate of pi: ([0-9.]+)", output).group(1))


# ------------------------------------------------------------------------------ fast


def test_backoff_yields_first_then_doubles_to_its_cap():
    backoff = inbox.Backoff()
    delays = [backoff.next_delay() for _ in range(15)]
    assert delays[0] == 0
    assert delays[1] == inbox.BACKOFF_MIN
    assert delays[-1] == inbox.BACKOFF_MAX
    backoff.reset()
    assert backoff.next_delay() == 0


def test_launcher_detection(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert not mpi.launched_by_mpiexec()
    monkeypatch.setenv("PMI_SIZE", "3")
    assert mpi.launched_by_mpiexec()


def test_hub_environment_drops_the_launchers_variables(monkeypatch):
    monkeypatch.setenv("PMI_FD", "7")
    environment = mpi._hub_environment()
    assert "PMI_FD" not in environment
    assert str(ROOT) in environment["PYTHONPATH"]


def test_zero_workers_is_a_user_error(monkeypatch):
    monkeypatch.delenv("PMI_SIZE", raising=False)
    monkeypatch.delenv("PMI_RANK", raising=False)
    with pytest.raises(UserError, match="at least 1"):
        mpi.MPIInterface(num_workers=0)


# ------------------------------------------------------------------------------ slow

needs_mpich = pytest.mark.skipif(not MPIEXEC.exists(), reason="needs `pip install mpich`")


@pytest.fixture
def spawn(monkeypatch):
    """Makes MPIInterfaces that spawn ranks through a hub; checks nothing is left over."""
    for name in list(os.environ):
        if name.startswith(("PMI_", "PMIX_", "OMPI_")):
            monkeypatch.delenv(name)
    made = []

    def make(ranks: int = 2) -> mpi.MPIInterface:
        interface = mpi.MPIInterface(num_workers=ranks)
        made.append((interface, interface._link.process.pid))
        return interface

    yield make
    for interface, hub_group in made:
        interface.cleanup()
        # cleanup SIGKILLs the hub's process group; the kernel may still be tearing a
        # rank down (on a busy machine) when it returns, not for long.
        assert _group_ends_within(hub_group, 10), f"process group {hub_group} outlived cleanup"


@pytest.fixture
def spawned(spawn):
    """An MPIInterface with 2 spawned ranks."""
    return spawn()


def _group_is_running(group: int) -> bool:
    """Zombies cannot be signalled away; only a running member counts as left over."""
    listing = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        pgid, stat = line.split()
        if int(pgid) == group and not stat.startswith("Z"):
            return True
    return False


def _group_ends_within(group: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _group_is_running(group):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize(
    "command",
    [
        ["-i", "mpi", "-n", "2"],
        [str(MPIEXEC), "-n", "3"],
    ],
    ids=["spawn", "mpiexec"],
)
@pytest.mark.slow
@needs_mpich
def test_monte_pi_estimates_pi(command):
    script = [sys.executable, "examples/monte_pi.py", "-i", "mpi"]
    full = script + command[2:] if command[0] == "-i" else command + script
    finished = _run(full)
    assert finished.returncode == 0, finished.stderr
    assert abs(_pi(finished.stdout) - 3.141592653589793) < 0.01


@pytest.mark.slow
@needs_mpich
def test_executor_on_spawned_ranks(spawned, tmp_path):
    data = tmp_path / "greeting.txt"
    data.write_text("hello rank")
    with Executor(interface=spawned) as pool:
        assert list(pool.map(triple, range(20))) == [3 * x for x in range(20)]
        with pytest.raises(ValueError, match="bad input") as raised:
            pool.submit(fail_with, "bad input").result(timeout=RUN_TIMEOUT)
        assert "fail_with" in str(raised.value.__cause__)  # the rank's traceback
    with Executor(interface=mpi.MPIInterface(2), data_files=[data]) as pool:
        assert pool.submit(read_data, "greeting.txt").result(timeout=RUN_TIMEOUT) == "hello rank"


@pytest.mark.slow
@needs_mpich
def test_a_killed_rank_is_a_task_error_and_new_ranks_run_the_jobs_behind_it(spawn):
    interface = spawn(1)
    with Executor(interface=interface, max_retries=0) as pool:
        doomed = pool.submit(kill_own_process)
        behind = [pool.submit(triple, x) for x in range(3)]  # sent ahead to the same rank
        with pytest.raises(WorkerLostError, match="MPI job of 1 ranks ended"):
            doomed.result(timeout=RUN_TIMEOUT)
        assert [future.result(timeout=RUN_TIMEOUT) for future in behind] == [0, 3, 6]
    assert interface.get_status()["restarts"] == 1


@pytest.mark.slow
@needs_mpich
def test_shutdown_returns_after_pending_futures_were_cancelled(spawned):
    pool = Executor(interface=spawned)
    futures = [pool.submit(sleep_then, x, 0.2) for x in range(30)]  # more than the ranks hold
    assert [future for future in futures if future.cancel()], "nothing was left to cancel"
    finished = threading.Thread(target=pool.shutdown, daemon=True)
    finished.start()
    finished.join(RUN_TIMEOUT / 4)
    assert not finished.is_alive(), "shutdown(wait=True) hung"


@pytest.mark.slow
@needs_mpich
def test_a_short_task_queued_behind_a_never_ending_one_runs_on_the_idle_rank(spawned):
    with pymw.PyMW_Master(spawned, show_progress=False) as master:
        master.submit_task(sleep_then, input_data=(0, 600))
        short = [master.submit_task(triple, input_data=(x,)) for x in range(1, 9)]
        deadline = time.monotonic() + RUN_TIMEOUT / 4
        while not all(task.state.done for task in short) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [task.result for task in short] == [3 * x for x in range(1, 9)]


@pytest.mark.slow
@needs_mpich
def test_the_initializer_runs_on_every_rank_which_imports_no_part_of_the_master(spawned):
    with Executor(
        interface=spawned, initializer=set_environment, initargs=("PYMW_RANK_STATE", "ready")
    ) as pool:
        states = [pool.submit(get_environment, "PYMW_RANK_STATE") for _ in range(8)]
        assert [future.result(timeout=RUN_TIMEOUT) for future in states] == ["ready"] * 8
        assert pool.submit(loaded_pymw_modules).result(timeout=RUN_TIMEOUT) == []


KILLED_MASTER = """
import json, sys, time
from pymw import pymw
from pymw.interfaces.mpi import MPIInterface

def sleep_long():
    import time
    time.sleep(600)

interface = MPIInterface(num_workers=2)
master = pymw.PyMW_Master(interface, show_progress=False)
tasks = [master.submit_task(sleep_long) for _ in range(2)]
time.sleep(1)
print(json.dumps({"hub_group": interface._link.process.pid}), flush=True)
time.sleep(600)
"""


@pytest.mark.slow
@needs_mpich
def test_a_killed_master_leaves_no_hub_or_rank_running(tmp_path):
    script = tmp_path / "master.py"
    script.write_text(KILLED_MASTER)
    master = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=_environment()
    )
    hub_group = json.loads(master.stdout.readline())["hub_group"]
    assert _group_is_running(hub_group)  # running now
    master.kill()
    master.wait()
    if not _group_ends_within(hub_group, 15):
        os.killpg(hub_group, signal.SIGKILL)
        pytest.fail("the hub or its ranks outlived the killed master")


@pytest.mark.slow
@needs_mpich
def test_under_mpiexec_a_killed_rank_ends_the_job_without_hanging(tmp_path):
    script = tmp_path / "kill_rank.py"
    script.write_text(
        "import os, signal\n"
        "from pymw import Executor\n"
        "from pymw.interfaces.mpi import MPIInterface\n"
        "def die():\n"
        "    import os, signal\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "if __name__ == '__main__':\n"
        "    with Executor(interface=MPIInterface()) as pool:\n"
        "        pool.submit(die).result()\n"
    )
    finished = _run([str(MPIEXEC), "-n", "3", sys.executable, str(script)])
    assert finished.returncode != 0
    assert "Killed" in finished.stdout + finished.stderr


def test_the_spawning_master_never_initialises_mpi():
    # MPI kills every process of a job when one rank dies; the master must not be one.
    code = "import pymw.interfaces.mpi, sys; print('mpi4py.MPI' in sys.modules)"
    finished = _run([sys.executable, "-c", code])
    assert finished.stdout.strip() == "False"
