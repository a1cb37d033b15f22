#!/usr/bin/env python3
"""Compare scheduling policies on a simulated desktop grid before deploying to volunteers.

python examples/worker_sim.py                         # 1,000 workers, 100,000 tasks
python examples/worker_sim.py --workers 100 --tasks 5000 --seed 7
python examples/worker_sim.py --trace event_trace.tab --tasks 1000000   # an FTA trace
python examples/worker_sim.py --plot completion.png   # needs pip install 'pymw[plot]'

Each task returns its CPU-seconds on the worker it is given (work / worker speed); the
grid simulator turns that into simulated wall time from each worker's availability:
on/off cycles here, or the hosts of a Failure Trace Archive `event_trace.tab` with
`--trace` (`write_fta_trace` makes synthetic ones). Tasks are submitted as results come
back, a few per worker in flight, so memory follows the grid, not the batch. The same
seed prints the same table every time (the real-seconds column aside).
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time

from tqdm import tqdm

from pymw import pymw
from pymw.errors import UserError
from pymw.interfaces import ArgumentParser, positive_int
from pymw.interfaces.grid_simulator import GridSimulatorInterface, SimWorker, read_fta_workers

MEAN_TASK_WORK = 60.0  # work units; a speed-1 worker does one per CPU-second
TASKS_IN_FLIGHT_PER_WORKER = 2  # enough that no worker waits for the next submission
MAX_RETRIES = 5  # a task whose every copy's host left the grid runs again elsewhere
POLICIES = (
    {"name": "first come", "replicas": 1},
    {"name": "2 replicas, first wins", "replicas": 2},
)
PLOT_HINT = "--plot needs matplotlib: pip install 'pymw[plot]'"
# A simulated task makes a few dozen short-lived records, and 200,000 tasks in flight are
# the live objects the garbage collector walks: at its default (a collection every 700
# allocations) it took a sixth of a million-task run. Results do not depend on it.
GC_THRESHOLD = 20_000


def task_cpu_seconds(worker, work):
    return work / worker.speed


def worker_speed(rng: random.Random) -> float:
    """Speeds around 2, at least 0.5."""
    return max(0.5, rng.normalvariate(2.0, 0.6))


def make_workers(count: int, rng: random.Random) -> list[SimWorker]:
    """Each worker is on and off for random stretches, over and over."""
    workers = []
    for index in range(count):
        speed = worker_speed(rng)
        on, off = rng.uniform(600, 6000), rng.uniform(60, 3000)
        workers.append(SimWorker(f"W{index}", speed, [(on, 1.0), (off, 0.0)], cycle=True))
    return workers


def trace_workers(path: str, count: int | None, rng: random.Random) -> list[SimWorker]:
    return read_fta_workers(path, num_workers=count, speed_func=lambda _index: worker_speed(rng))


def simulate(workers, replicas: int, works: list[float], label: str) -> dict:
    """Run the batch through PyMW_Master, submitting as results come back."""
    interface = GridSimulatorInterface(workers, replicas=replicas, lookahead=len(workers))
    in_flight = TASKS_IN_FLIGHT_PER_WORKER * len(workers)
    started = time.perf_counter()
    with (
        pymw.PyMW_Master(interface, max_retries=MAX_RETRIES, show_progress=False) as master,
        tqdm(total=len(works), unit="task", desc=label, leave=False, disable=None) as bar,
    ):
        pending = 0
        with interface.hold(streaming=True):  # the clock never runs ahead of submissions
            for work in works:
                master.submit_task(task_cpu_seconds, (work,))
                pending += 1
                if pending >= in_flight:
                    master.get_result()
                    pending -= 1
                    bar.update()
        for _ in range(pending):
            master.get_result()
            bar.update()
    status = interface.get_status()
    status["real_seconds"] = time.perf_counter() - started
    status["completion_times"] = interface.completion_times
    return status


def plot(path: str, curves: dict[str, list[float]]) -> None:
    """Tasks done over simulated time, one line per policy."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4))
    for name, times in curves.items():
        axes.plot(sorted(times), range(1, len(times) + 1), label=name)
    axes.set(xlabel="simulated seconds", ylabel="tasks done", title="Completion curve")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def parse_options(parser: argparse.ArgumentParser) -> argparse.Namespace:
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="simulated workers (default 1000; with --trace, the trace's first this-many hosts)",
    )
    parser.add_argument(
        "--tasks", type=positive_int, default=100_000, help="tasks (default 100,000)"
    )
    parser.add_argument("--seed", type=int, default=2009, help="random seed (default 2009)")
    parser.add_argument("--trace", metavar="FILE", help="hosts from an FTA event_trace.tab")
    parser.add_argument("--plot", metavar="PNG", help="draw the completion curves")
    parser.add_argument(
        "--replicas",
        type=int,
        choices=[policy["replicas"] for policy in POLICIES],
        help="run only the policy with this many replicas",
    )
    options = parser.parse_args()
    if options.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.exit(2, f"{parser.prog}: {PLOT_HINT}\n")
    return options


def main() -> None:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    try:
        run(parse_options(parser))
    except UserError as error:  # an unreadable trace: one line, as a bad switch is
        parser.exit(2, f"{parser.prog}: error: {error}\n")


def run(options: argparse.Namespace) -> None:
    gc.set_threshold(GC_THRESHOLD)
    task_rng = random.Random(options.seed)
    works = [task_rng.expovariate(1 / MEAN_TASK_WORK) for _ in range(options.tasks)]
    header = (
        "policy",
        "makespan s",
        "mean wall s",
        "median wall s",
        "stddev wall s",
        "total CPU s",
        "real s",
    )
    curves = {}
    policies = [p for p in POLICIES if options.replicas in (None, p["replicas"])]
    for number, policy in enumerate(policies):
        rng = random.Random(options.seed)
        if options.trace:
            workers = trace_workers(options.trace, options.workers, rng)
        else:
            workers = make_workers(options.workers or 1000, rng)
        if number == 0:
            print(f"{options.tasks} tasks on {len(workers)} simulated workers, seed {options.seed}")
            print("| " + " | ".join(header) + " |")
            print("|" + "|".join("---" for _ in header) + "|")
        status = simulate(workers, policy["replicas"], works, policy["name"])
        curves[policy["name"]] = status["completion_times"]
        row = (
            policy["name"],
            f"{status['sim_time']:.1f}",
            f"{status['mean_wall_time']:.1f}",
            f"{status['median_wall_time']:.1f}",
            f"{status['stddev_wall_time']:.1f}",
            f"{status['total_cpu_time']:.0f}",
            f"{status['real_seconds']:.1f}",
        )
        print("| " + " | ".join(row) + " |", flush=True)
    if options.plot:
        plot(options.plot, curves)
        print(f"completion curves: {options.plot}", file=sys.stderr)


if __name__ == "__main__":
    main()
