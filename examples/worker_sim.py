#!/usr/bin/env python3
"""Compare scheduling policies on a simulated desktop grid before deploying to volunteers.

python examples/worker_sim.py                         # 1,000 workers, 100,000 tasks
python examples/worker_sim.py --workers 100 --tasks 5000 --seed 7

Each task returns its CPU-seconds on the worker it is given (work / worker speed); the
grid simulator turns that into simulated wall time from each worker's availability
(on/off cycles here; an FTA trace with `read_fta_workers`). The same seed prints the same
table every time.
"""

import argparse
import random
import time

from pymw import pymw
from pymw.interfaces.grid_simulator import GridSimulatorInterface, SimWorker

MEAN_TASK_WORK = 60.0  # work units; a speed-1 worker does one per CPU-second


def task_cpu_seconds(worker, work):
    return work / worker.speed


def make_workers(count, rng):
    """Speeds around 2 (at least 0.5); each worker is on and off for random stretches."""
    workers = []
    for index in range(count):
        speed = max(0.5, rng.normalvariate(2.0, 0.6))
        on, off = rng.uniform(600, 6000), rng.uniform(60, 3000)
        workers.append(SimWorker(f"W{index}", speed, [(on, 1.0), (off, 0.0)], cycle=True))
    return workers


def simulate(policy, num_workers, works, seed):
    rng = random.Random(seed)
    interface = GridSimulatorInterface(make_workers(num_workers, rng), replicas=policy["replicas"])
    started = time.perf_counter()
    with pymw.PyMW_Master(interface=interface, show_progress=False) as master:
        with interface.hold():  # start the clock with the whole batch queued
            tasks = [master.submit_task(task_cpu_seconds, (work,)) for work in works]
        for task in tasks:
            master.get_result(task)
    status = interface.get_status()
    status["real_seconds"] = time.perf_counter() - started
    return status


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2009)
    options = parser.parse_args()
    task_rng = random.Random(options.seed)
    works = [task_rng.expovariate(1 / MEAN_TASK_WORK) for _ in range(options.tasks)]
    policies = [
        {"name": "first come", "replicas": 1},
        {"name": "2 replicas, first wins", "replicas": 2},
    ]
    print(f"{options.tasks} tasks on {options.workers} simulated workers, seed {options.seed}")
    header = (
        "policy",
        "makespan s",
        "mean wall s",
        "median wall s",
        "stddev wall s",
        "total CPU s",
        "real s",
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for policy in policies:
        status = simulate(policy, options.workers, works, options.seed)
        row = (
            policy["name"],
            f"{status['sim_time']:.1f}",
            f"{status['mean_wall_time']:.1f}",
            f"{status['median_wall_time']:.1f}",
            f"{status['stddev_wall_time']:.1f}",
            f"{status['total_cpu_time']:.0f}",
            f"{status['real_seconds']:.1f}",
        )
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
