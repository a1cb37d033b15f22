"""The MPI interface: wire format and options (fast), real MPICH ranks (slow).

The slow tests need `pip install mpi4py mpich`; they start real ranks in both launch
styles, always under a timeout, and check that no hub process group is left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("mpi4py")

from pyboinc import contract
from pymw import Executor
from pymw.errors import UserError, WorkerLostError
from pymw.interfaces import mpi, mpi_worker
from pymw.programs import program_from_function

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


def test_frames_round_trip_bytes():
    header, payload = mpi_worker.unpack(mpi_worker.pack({"task": 3}, b"\x00\xffdata"))
    assert header == {"task": 3}
    assert payload == b"\x00\xffdata"


def test_backoff_yields_first_then_doubles_to_its_cap():
    backoff = mpi_worker.Backoff()
    delays = [backoff.next_delay() for _ in range(15)]
    assert delays[0] == 0
    assert delays[1] == mpi_worker.BACKOFF_MIN
    assert delays[-1] == mpi_worker.BACKOFF_MAX
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


def test_options_refuse_a_custom_worker_app():
    options = SimpleNamespace(num_workers=2, app_path="dist/pyboinc", app_args="")
    with pytest.raises(UserError, match="drop -c"):
        mpi.MPIInterface.from_options(options)


def test_zero_workers_is_a_user_error(monkeypatch):
    monkeypatch.delenv("PMI_SIZE", raising=False)
    monkeypatch.delenv("PMI_RANK", raising=False)
    with pytest.raises(UserError, match="at least 1"):
        mpi.MPIInterface(num_workers=0)


def test_rank_worker_unpacks_the_archive_sent_with_the_job(tmp_path, monkeypatch):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("greeting.txt", "hello from the master")
    work_dir = tmp_path / "rank"
    work_dir.mkdir()
    monkeypatch.chdir(work_dir)
    program = program_from_function(read_data)
    zip_bytes = archive.read_bytes()
    header = {
        "task": 1,
        "program": program.digest,
        "function": "read_data",
        "code": program.code,
        "zip": "data.zip",
        "zip_size": len(zip_bytes),
    }
    input_bytes = contract.encode_input(("greeting.txt",), "data.zip")
    reply, output = mpi_worker.RankWorker(str(work_dir)).run(header, zip_bytes + input_bytes)
    assert reply["task"] == 1
    assert contract.decode_output(output).value == "hello from the master"


# ------------------------------------------------------------------------------ slow

needs_mpich = pytest.mark.skipif(not MPIEXEC.exists(), reason="needs `pip install mpich`")


@pytest.fixture
def spawned(monkeypatch):
    """An MPIInterface that spawns 2 ranks through its hub; checks nothing is left over."""
    for name in list(os.environ):
        if name.startswith(("PMI_", "PMIX_", "OMPI_")):
            monkeypatch.delenv(name)
    interface = mpi.MPIInterface(num_workers=2)
    hub_group = interface._link.process.pid
    yield interface
    interface.cleanup()
    with pytest.raises(ProcessLookupError):
        _signal_group_if_running(hub_group)


def _signal_group_if_running(group: int) -> None:
    """Zombies cannot be signalled away; only a running member counts as left over."""
    listing = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        pgid, stat = line.split()
        if int(pgid) == group and not stat.startswith("Z"):
            os.killpg(group, 0)
            return
    raise ProcessLookupError(group)


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
def test_a_killed_rank_is_a_task_error_and_new_ranks_take_over(spawned):
    with Executor(interface=spawned) as pool:
        with pytest.raises(WorkerLostError, match="MPI job of 2 ranks ended"):
            pool.submit(kill_own_process).result(timeout=RUN_TIMEOUT)
        assert pool.submit(triple, 5).result(timeout=RUN_TIMEOUT) == 15
    assert spawned.get_status()["restarts"] == 1


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
