"""Fixtures for the Slurm interface: a real one-node Slurm cluster (Debian's munged,
slurmctld and slurmd), started once per test session, and SlurmInterface factories."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pymw.interfaces.slurm import SlurmInterface
from pymw.testing.slurm_cluster import ClusterError, SlurmCluster
from pymw.testing.slurm_cluster.cluster import check_host

#: Test masters ask slurmctld every half second (a real cluster's default is 10 s).
TEST_STATE_INTERVAL = 0.5


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> Iterator[SlurmCluster]:
    """A real one-node Slurm cluster for the session: Debian's munged, slurmctld and slurmd
    on a private directory (pymw.testing.slurm_cluster), with SLURM_CONF pointing at it for
    the tests and the programs they start; all of it is stopped at the end."""
    try:
        check_host()
    except ClusterError as error:
        pytest.skip(str(error))
    cluster = SlurmCluster.open(tmp_path_factory.mktemp("slurm") / "cluster")
    cluster.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in cluster.env.items():
                patch.setenv(name, value)
            yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def slurm(slurm_cluster: SlurmCluster) -> Iterator[SlurmCluster]:
    """The session's cluster, left with no jobs and an idle node after the test."""
    yield slurm_cluster
    slurm_cluster.reset()


@pytest.fixture
def make_interface(slurm: SlurmCluster, tmp_path: Path) -> Callable[..., SlurmInterface]:
    """SlurmInterface on the test cluster, with a work directory in tmp_path."""

    def make(**settings) -> SlurmInterface:
        settings.setdefault("work_dir", tmp_path / "work")
        settings.setdefault("python", sys.executable)
        settings.setdefault("poll_interval", 0.1)
        settings.setdefault("state_interval", TEST_STATE_INTERVAL)
        return SlurmInterface(**settings)

    return make
