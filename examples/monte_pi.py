#!/usr/bin/env python3
"""Estimate pi by throwing random darts, one task per worker.

python examples/monte_pi.py                          # all local cores
python examples/monte_pi.py -c dist/pyboinc -a 1.00_python311.zip   # frozen worker
python examples/monte_pi.py -i boinc -p <project> -c dist/pyboinc -a 1.00_python311.zip
python examples/monte_pi.py -i slurm -n 2             # a Slurm cluster (docs/clusters.md)
"""

import math
import random
import time

from pymw import interfaces, pymw


def throw_dart():
    x, y = random.random(), random.random()
    return 1 if x * x + y * y <= 1 else 0


def monte_pi(rand_seed, num_tests):
    try:
        import boinc  # in the PyBOINC worker: tell the BOINC client how far we are
    except ImportError:
        boinc = None
    random.seed(rand_seed)
    num_hits = 0
    for done in range(num_tests):
        num_hits += throw_dart()
        if boinc is not None and done % 100_000 == 0:
            boinc.fraction_done(done / num_tests)
    return [num_hits, num_tests]


def main():
    parser = interfaces.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-t",
        "--num_tests",
        type=interfaces.positive_int,
        default=1_000_000,
        help="number of darts to throw in all (default 1,000,000)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="random seed (default 1: a rerun asks for the same tasks, so on BOINC it "
        "reattaches to the workunits made before)",
    )
    options, _ = interfaces.parse_options(parser)
    interface = interfaces.get_interface(options)
    num_tasks = interface.num_workers
    tests_per_task = options.num_tests // num_tasks

    start = time.time()
    with pymw.PyMW_Master(interface=interface) as master:
        tasks = [
            master.submit_task(
                monte_pi,
                input_data=(options.seed * 1000 + index, tests_per_task),
                modules=("random",),
                dep_funcs=(throw_dart,),
            )
            for index in range(num_tasks)
        ]
        num_hits = num_tests = 0
        for task in tasks:
            _, (hits, tests) = master.get_result(task)
            num_hits += hits
            num_tests += tests
    elapsed = time.time() - start

    pi_estimate = 4.0 * num_hits / num_tests
    print(f"Estimate of pi: {pi_estimate:.6f}")
    print(f"Error: {abs(pi_estimate - math.pi):.6f}")
    print(f"Tasks: {num_tasks}, tests per task: {tests_per_task}")
    print(f"Calculation time: {elapsed:.2f} s")


if __name__ == "__main__":
    main()
