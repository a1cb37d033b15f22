#!/usr/bin/env python3
"""The grid simulator's event core against SimPy 4 on the same model, side by side.

    python benchmarks/bench_simulator.py [--workers 1000] [--tasks 200000] [--seed 1]

The model: workers with random speeds pull tasks with exponential work from one queue,
first come first served, always available. SimPy runs it as the usual `Store` program
(one process per worker, `yield store.get()` then `yield env.timeout(work / speed)`);
PyMW runs it with `EventCore.run_queue`, the heap core under `GridSimulatorInterface`.
Both must agree on the makespan; each side's time is the best of 3 runs.
Goal: the core at least 10x faster than SimPy's Store.
"""

from __future__ import annotations

import argparse
import math
import random
import time

from pymw.interfaces.grid_simulator import EventCore, SimWorker

ROUNDS = 3


def model(workers: int, tasks: int, seed: int) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    speeds = [rng.uniform(0.5, 2.0) for _ in range(workers)]
    work = [rng.expovariate(1.0) for _ in range(tasks)]
    return speeds, work


def run_simpy(speeds: list[float], work: list[float]) -> tuple[float, int]:
    import simpy

    env = simpy.Environment()
    store = simpy.Store(env)
    store.items.extend(work)
    done = [0]

    def worker(speed: float):
        while store.items:
            amount = yield store.get()
            yield env.timeout(amount / speed)
            done[0] += 1

    for speed in speeds:
        env.process(worker(speed))
    env.run()
    return env.now, done[0]


def run_core(speeds: list[float], work: list[float]) -> tuple[float, int]:
    core = EventCore()
    for index, speed in enumerate(speeds):
        core.add_worker(SimWorker(f"W{index}", speed))
    return core.run_queue(work)


def timed(function, *args) -> tuple[float, tuple[float, int]]:
    """The best of ROUNDS runs: the figure least disturbed by other load on the machine."""
    best, result = math.inf, (0.0, 0)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        result = function(*args)
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    speeds, work = model(options.workers, options.tasks, options.seed)
    simpy_seconds, (simpy_makespan, simpy_done) = timed(run_simpy, speeds, work)
    core_seconds, (core_makespan, core_done) = timed(run_core, speeds, work)
    assert simpy_done == core_done == options.tasks, (simpy_done, core_done)
    assert math.isclose(simpy_makespan, core_makespan, rel_tol=1e-9), (
        simpy_makespan,
        core_makespan,
    )
    # Events as SimPy counts them: a get and a timeout per task.
    events = 2 * options.tasks
    print(
        f"model: {options.workers} workers, {options.tasks} exponential tasks, "
        f"makespan {core_makespan:.3f} (both agree)"
    )
    print(f"SimPy 4 Store      {simpy_seconds:7.3f} s  {events / simpy_seconds:12,.0f} events/s")
    print(f"PyMW EventCore     {core_seconds:7.3f} s  {events / core_seconds:12,.0f} events/s")
    print(f"speedup over SimPy {simpy_seconds / core_seconds:7.1f}x   (goal >= 10x)")


if __name__ == "__main__":
    main()
