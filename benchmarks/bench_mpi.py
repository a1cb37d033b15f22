#!/usr/bin/env python3
"""PyMW's MPI interface against mpi4py.futures.MPIPoolExecutor on the same MPI ranks.

    python benchmarks/bench_mpi.py [--ranks 3]

Each contender runs in its own `mpiexec -n RANKS` job (rank 0 the master, the others the
workers): PyMW as `mpiexec python bench_mpi.py --contender pymw`, MPIPoolExecutor as
`mpiexec python -m mpi4py.futures bench_mpi.py --contender futures`. Prints, measured here:
  (a) null tasks per second, N = 3000            goal: PyMW >= 1.0x MPIPoolExecutor
  (b) CPU-bound batch, speedup over serial        goal: PyMW >= 1.0x MPIPoolExecutor
  (c) 1 MB of bytes in and out per task, N = 100  goal: PyMW >= 1.0x MPIPoolExecutor
Needs `pip install mpi4py mpich`; the interpreter's bin/ (the wheel's mpiexec) goes first
on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))
import bench_tasks  # noqa: E402

NULL_TASKS = 3000
CPU_TASKS = 8
CPU_WORK = 1_500_000
BYTES_TASKS = 100
BYTES_SIZE = 1 << 20
RUN_TIMEOUT = 600


def measure(executor) -> dict[str, float]:
    """Null-task throughput and CPU batch time on an executor (already warmed up)."""
    list(executor.map(bench_tasks.null_task, range(100)))
    started = time.perf_counter()
    futures = [executor.submit(bench_tasks.null_task, index) for index in range(NULL_TASKS)]
    for future in futures:
        future.result()
    null_rate = NULL_TASKS / (time.perf_counter() - started)
    started = time.perf_counter()
    list(executor.map(bench_tasks.cpu_task, [CPU_WORK] * CPU_TASKS))
    cpu_seconds = time.perf_counter() - started
    payload = bytes(range(256)) * (BYTES_SIZE // 256)
    started = time.perf_counter()
    futures = [executor.submit(bench_tasks.reverse_bytes, payload) for _ in range(BYTES_TASKS)]
    assert all(len(future.result()) == BYTES_SIZE for future in futures)
    bytes_rate = BYTES_TASKS / (time.perf_counter() - started)
    return {
        "null_per_second": null_rate,
        "cpu_seconds": cpu_seconds,
        "bytes_per_second": bytes_rate,
    }


def contender(name: str) -> None:
    if name == "pymw":
        from pymw import Executor
        from pymw.interfaces.mpi import MPIInterface

        executor = Executor(interface=MPIInterface())  # worker ranks serve, then exit here
    else:
        from mpi4py.futures import MPIPoolExecutor

        executor = MPIPoolExecutor()
    with executor:
        figures = measure(executor)
    print(json.dumps(figures))


def serial_cpu_seconds() -> float:
    started = time.perf_counter()
    for _ in range(CPU_TASKS):
        bench_tasks.cpu_task(CPU_WORK)
    return time.perf_counter() - started


def run_contender(name: str, ranks: int) -> dict[str, float]:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    launcher = ["-m", "mpi4py.futures"] if name == "futures" else []
    command = [
        str(mpiexec),
        "-n",
        str(ranks),
        sys.executable,
        *launcher,
        __file__,
        "--contender",
        name,
    ]
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent), str(HERE)]))
    environment["PATH"] = os.pathsep.join([str(mpiexec.parent), environment.get("PATH", "")])
    finished = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=RUN_TIMEOUT, check=False
    )
    if finished.returncode != 0:
        sys.exit(f"bench_mpi: {name} failed: {finished.stderr.strip()[-2000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=3, help="MPI ranks, master included")
    parser.add_argument("--contender", choices=["pymw", "futures"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.contender:
        contender(options.contender)
        return
    serial = serial_cpu_seconds()
    pymw_figures = run_contender("pymw", options.ranks)
    futures_figures = run_contender("futures", options.ranks)
    workers = options.ranks - 1
    print(f"{workers} worker ranks + master (mpiexec -n {options.ranks}), {os.cpu_count()} cores")
    print(
        f"(a) null tasks/s   PyMW {pymw_figures['null_per_second']:9,.0f}   "
        f"MPIPoolExecutor {futures_figures['null_per_second']:9,.0f}   "
        f"ratio {pymw_figures['null_per_second'] / futures_figures['null_per_second']:.2f}x"
        "  (goal >= 1.0x)"
    )
    pymw_speedup = serial / pymw_figures["cpu_seconds"]
    futures_speedup = serial / futures_figures["cpu_seconds"]
    print(
        f"(b) CPU batch      serial {serial:.2f} s   PyMW {pymw_figures['cpu_seconds']:.2f} s "
        f"(speedup {pymw_speedup:.2f})   MPIPoolExecutor {futures_figures['cpu_seconds']:.2f} s "
        f"(speedup {futures_speedup:.2f})   ratio {pymw_speedup / futures_speedup:.2f}x"
        "  (goal >= 1.0x)"
    )
    print(
        f"(c) 1 MB tasks/s   PyMW {pymw_figures['bytes_per_second']:9,.0f}   "
        f"MPIPoolExecutor {futures_figures['bytes_per_second']:9,.0f}   "
        f"ratio {pymw_figures['bytes_per_second'] / futures_figures['bytes_per_second']:.2f}x"
        "  (goal >= 1.0x)"
    )


if __name__ == "__main__":
    main()
