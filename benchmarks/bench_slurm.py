#!/usr/bin/env python3
"""Tasks per second through Slurm job arrays, against one sbatch per task, same run.

    python benchmarks/bench_slurm.py [--tasks 300] [--cluster-dir DIR]

Both runs are PyMW_Master + SlurmInterface as a user runs them, on a real one-node Slurm
cluster (pymw.testing.slurm_cluster: Debian's munged, slurmctld and slurmd, started in a
temporary directory, or reused in --cluster-dir) with the same tiny tasks and the default
python3 worker. The array run submits the batch as one `sbatch --array` (the interface's
default); the peer is the same interface with max_array_size=1, so every task is its own
`sbatch`. Each line gives the seconds spent submitting and the tasks per second from the
first submit to the last result. On one node, slurmctld starts jobs about once a second
and the node runs a few at a time, so the gap measured here is mostly the submitting;
on a busy cluster each sbatch also waits its turn with slurmctld.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_tasks

from pymw import pymw
from pymw.interfaces.slurm import SlurmInterface
from pymw.testing.slurm_cluster import ClusterError, SlurmCluster

#: Seconds between squeue calls in both runs (the interface's default is 10).
STATE_INTERVAL = 1.0


def run_batch(tasks: int, work_dir: Path, max_array_size: int | None) -> tuple[float, float]:
    """(seconds spent in sbatch, tasks per second) for one batch, checking every result."""
    interface = SlurmInterface(
        tasks, work_dir=work_dir, max_array_size=max_array_size, state_interval=STATE_INTERVAL
    )
    submitting = 0.0
    submit = interface.slurm.submit

    def timed_submit(*args):
        nonlocal submitting
        start = time.perf_counter()
        try:
            return submit(*args)
        finally:
            submitting += time.perf_counter() - start

    interface.slurm.submit = timed_submit
    start = time.perf_counter()
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        handles = [master.submit_task(bench_tasks.null_task, input_data=(i,)) for i in range(tasks)]
        results = [master.get_result(handle)[1] for handle in handles]
    elapsed = time.perf_counter() - start
    if results != list(range(tasks)):
        raise SystemExit("bench_slurm: a batch returned wrong results")
    return submitting, tasks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=300, help="tasks per batch")
    parser.add_argument("--cluster-dir", type=Path, help="reuse (or start) the cluster here")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pymw-bench-slurm-") as scratch:
        cluster = SlurmCluster.open(options.cluster_dir or Path(scratch) / "cluster")
        try:
            cluster.start()
        except ClusterError as error:
            raise SystemExit(f"bench_slurm: no test cluster here: {error}") from None
        os.environ.update(cluster.env)  # SLURM_CONF for sbatch and squeue
        try:
            arrays = run_batch(options.tasks, Path(scratch) / "arrays", None)
            singles = run_batch(options.tasks, Path(scratch) / "singles", 1)
        finally:
            if options.cluster_dir is None:
                cluster.stop()
    tasks = options.tasks
    print(f"Slurm, {tasks} tiny tasks on a one-node test cluster ({os.cpu_count()} CPUs):")
    print(
        f"  into the queue: one sbatch --array {arrays[0]:.2f} s ({tasks / arrays[0]:.0f} "
        f"tasks/s); one sbatch per task {singles[0]:.2f} s ({tasks / singles[0]:.0f} tasks/s): "
        f"arrays are {singles[0] / arrays[0]:.0f}x faster"
    )
    print(
        f"  end to end: arrays {arrays[1]:.1f} tasks/s; one sbatch per task {singles[1]:.1f} "
        f"tasks/s: {arrays[1] / singles[1]:.2f}x (one node runs the jobs: slurmctld starts "
        "them once a second, a few per core)"
    )


if __name__ == "__main__":
    main()
