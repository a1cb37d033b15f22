"""The one-node Slurm cluster fixture: real munged, slurmctld and slurmd that start
cleanly twice, tolerate a leftover or half-dead cluster, and leave nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pymw.testing.slurm_cluster import ClusterError, SlurmCluster
from pymw.testing.slurm_cluster.cli import main
from pymw.testing.slurm_cluster.cluster import check_host
from pymw.testing.slurm_cluster.config import ClusterLayout, NodeSpec, slurm_conf

# What `slurmd -C` printed on the development machine.
SLURMD_C = (
    "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 "
    "RealMemory=24105\nUpTime=0-03:01:17\n"
)


def test_the_config_describes_this_host_as_slurmd_sees_it(tmp_path):
    node = NodeSpec.parse(SLURMD_C)
    assert node == NodeSpec("vm", SLURMD_C.splitlines()[0].removeprefix("NodeName=vm "))
    text = slurm_conf(ClusterLayout(tmp_path), node, 7001, 7002)
    assert "NodeName=vm NodeAddr=127.0.0.1 CPUs=2 Boards=1" in text
    assert "SelectType=select/cons_tres" in text
    assert f"AuthInfo=socket={tmp_path}/munge/munge.socket" in text
    assert "SlurmctldPort=7001" in text and "SlurmdPort=7002" in text
    assert "cgroup" not in text.replace("cgroup delegation", "")


def test_a_host_without_slurm_is_told_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ClusterError, match="install Debian's slurmctld slurmd slurm-client munge"):
        check_host()


@pytest.mark.parametrize("command", ["status", "stop", "env"])
def test_cli_commands_on_a_directory_without_a_cluster_are_one_line(command, tmp_path, capsys):
    assert main([command, "--dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pymw-slurm-cluster: no cluster in ") and err.count("\n") == 1


def test_cli_refuses_unknown_commands_in_one_line(tmp_path, capsys):
    assert main(["bogus", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pymw.testing.slurm_cluster", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.2)


@pytest.fixture
def cluster_dir(tmp_path) -> Path:
    try:
        check_host()
    except ClusterError as error:
        pytest.skip(str(error))
    directory = tmp_path / "cluster"
    yield directory
    SlurmCluster.open(directory).stop()


@pytest.mark.slow
def test_started_twice_from_the_shell_then_stopped_leaves_nothing(cluster_dir):
    started = _cli("start", "--dir", str(cluster_dir))
    assert started.returncode == 0, started.stderr
    assert "node:       idle" in started.stdout
    assert f"export SLURM_CONF={cluster_dir}/slurm.conf" in started.stdout
    cluster = SlurmCluster.open(cluster_dir)
    daemons = cluster.status()["daemons"]
    assert _cli("start", "--dir", str(cluster_dir)).returncode == 0  # harmless: reused
    assert cluster.status()["daemons"] == daemons

    in_shell = f'eval "$({sys.executable} -m pymw.testing.slurm_cluster env --dir {cluster_dir})"'
    job = subprocess.run(
        ["bash", "-c", f"{in_shell} && sbatch --parsable --output=/dev/null --wrap='sleep 313'"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert job.returncode == 0, job.stderr
    _wait_for(lambda: "sleep 313" in _command_lines())

    assert _cli("stop", "--dir", str(cluster_dir)).returncode == 0
    assert cluster.processes() == []
    assert "sleep 313" not in _command_lines()  # the job went with its step
    assert cluster.status()["daemons"] == dict.fromkeys(daemons)


@pytest.mark.slow
def test_a_half_dead_cluster_starts_again_from_clean_state(cluster_dir):
    cluster = SlurmCluster.open(cluster_dir)
    cluster.start()
    cluster.run(
        "sbatch", "--hold", "--output=/dev/null", "--wrap=true"
    )  # a job the restart must not bring back
    old = cluster.status()["daemons"]
    os.kill(old["slurmctld"], signal.SIGKILL)
    cluster.start()
    new = cluster.status()["daemons"]
    assert all(new.values()) and not set(new.values()) & set(old.values())
    assert cluster.node_state() == "idle"
    assert cluster.run("squeue", "--noheader", "--states=all").stdout == ""


def _command_lines() -> str:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                pass
    return "\n".join(lines)
