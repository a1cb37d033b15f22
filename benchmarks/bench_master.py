#!/usr/bin/env python3
"""PyMW's generic interface against concurrent.futures.ProcessPoolExecutor, same workers.

    python benchmarks/bench_master.py [--workers N]

Prints, measured in this run:
  (a) null tasks per second, N = 2000             goal: >= 1.0x ProcessPoolExecutor
  (b) CPU-bound batch time, speedup over serial   goal: speedup >= 1.9 on 2 cores
  (c) 100,000 null tasks: time and peak RSS       goal: <= ProcessPoolExecutor's RSS
  (d) fresh-process per-task overhead             goal: <= 1.5x `python -c pass`
  (e) 1 MB of bytes in and out per task, N = 200  goal: >= 1.0x ProcessPoolExecutor
  (f) Executor.map of 20,000 null tasks, chunksize 64, and (g) with the chunksize
      multiprocessing.Pool.map picks itself       goal: >= 1.0x ProcessPoolExecutor.map
      and >= 1.0x Pool.map, both with the same chunksize (best of 5 runs each)
Each figure is measured in its own child process so that one cannot warm the next, and
but for (c) it is the median of ROUNDS such runs, pymw's alternating with its peers': on a
shared machine a moment of load would otherwise decide a ratio (the same code was seen to
vary by 30% from one run to the next). PyMW's modules are byte-compiled first, as any
first import leaves them: under PYTHONDONTWRITEBYTECODE every child would otherwise
compile them from source, while the standard library its peers run from is compiled
already.
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import bench_tasks

NULL_TASKS = 2000
MANY_TASKS = 100_000
CPU_TASKS = 16
CPU_WORK = 1_500_000
FRESH_TASKS = 40
BYTES_TASKS = 200
BYTES_SIZE = 1 << 20
MAP_TASKS = 20_000
MAP_CHUNKSIZE = 64
MAP_REPEATS = 5
MAP_KINDS = ("pymw", "ProcessPoolExecutor", "Pool.map")
ROUNDS = 3


def _pymw_executor(workers: int, **options):
    from pymw import Executor
    from pymw.interfaces.generic import GenericInterface

    return Executor(interface=GenericInterface(num_workers=workers, **options))


def _pool(kind: str, workers: int):
    if kind == "pymw":
        return _pymw_executor(workers)
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers)


def _warm(pool) -> None:
    list(pool.map(bench_tasks.null_task, range(50)))


def measure_null(kind: str, workers: int) -> dict:
    with _pool(kind, workers) as pool:
        _warm(pool)
        start = time.perf_counter()
        futures = [pool.submit(bench_tasks.null_task, i) for i in range(NULL_TASKS)]
        assert [f.result() for f in futures] == list(range(NULL_TASKS))
        elapsed = time.perf_counter() - start
    return {"tasks_per_s": NULL_TASKS / elapsed}


def measure_cpu(kind: str, workers: int) -> dict:
    if kind == "serial":
        start = time.perf_counter()
        for _ in range(CPU_TASKS):
            bench_tasks.cpu_task(CPU_WORK)
        return {"seconds": time.perf_counter() - start}
    with _pool(kind, workers) as pool:
        _warm(pool)
        start = time.perf_counter()
        list(pool.map(bench_tasks.cpu_task, [CPU_WORK] * CPU_TASKS))
        return {"seconds": time.perf_counter() - start}


def measure_many(kind: str, workers: int) -> dict:
    with _pool(kind, workers) as pool:
        start = time.perf_counter()
        futures = [pool.submit(bench_tasks.null_task, i) for i in range(MANY_TASKS)]
        for future in futures:
            future.result()
        elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": elapsed, "peak_rss_mb": peak_kb / 1024}


def measure_fresh(kind: str, workers: int) -> dict:
    if kind == "python -c pass":
        times = []
        for _ in range(FRESH_TASKS // 2):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            times.append(time.perf_counter() - start)
        return {"per_task_ms": statistics.median(times) * 1000}
    with _pymw_executor(1, fresh_process=True) as pool:
        _warm_one = pool.submit(bench_tasks.null_task, 0)
        _warm_one.result()
        start = time.perf_counter()
        for i in range(FRESH_TASKS):
            pool.submit(bench_tasks.null_task, i).result()
        return {"per_task_ms": (time.perf_counter() - start) / FRESH_TASKS * 1000}


def measure_bytes(kind: str, workers: int) -> dict:
    payload = bytes(range(256)) * (BYTES_SIZE // 256)
    with _pool(kind, workers) as pool:
        _warm(pool)
        start = time.perf_counter()
        futures = [pool.submit(bench_tasks.reverse_bytes, payload) for _ in range(BYTES_TASKS)]
        assert all(len(f.result()) == BYTES_SIZE for f in futures)
        elapsed = time.perf_counter() - start
    return {"tasks_per_s": BYTES_TASKS / elapsed}


def _map_pool(kind: str, workers: int):
    if kind == "Pool.map":
        return multiprocessing.Pool(workers)
    return _pool(kind, workers)


def _pool_map_chunksize(workers: int) -> int:
    """The chunksize multiprocessing.Pool.map picks for MAP_TASKS items by itself."""
    chunksize, extra = divmod(MAP_TASKS, workers * 4)
    return chunksize + bool(extra)


def _measure_map(kind: str, workers: int, chunksize: int) -> dict:
    with _map_pool(kind, workers) as pool:
        list(pool.map(bench_tasks.null_task, range(50), chunksize=chunksize))
        times = []
        for _ in range(MAP_REPEATS):
            start = time.perf_counter()
            results = list(pool.map(bench_tasks.null_task, range(MAP_TASKS), chunksize=chunksize))
            times.append(time.perf_counter() - start)
        assert results == list(range(MAP_TASKS))
    return {"seconds": min(times)}


def measure_map(kind: str, workers: int) -> dict:
    return _measure_map(kind, workers, MAP_CHUNKSIZE)


def measure_map_pool_chunks(kind: str, workers: int) -> dict:
    return _measure_map(kind, workers, _pool_map_chunksize(workers))


MEASUREMENTS = {
    "null": measure_null,
    "cpu": measure_cpu,
    "many": measure_many,
    "fresh": measure_fresh,
    "bytes": measure_bytes,
    "map": measure_map,
    "map_pool_chunks": measure_map_pool_chunks,
}


def _byte_compile() -> None:
    root = Path(__file__).resolve().parents[1]
    for package in ("pymw", "pymw_worker", "pyboinc", "benchmarks"):
        compileall.compile_dir(root / package, quiet=1)


def run_child(measurement: str, kind: str, workers: int) -> dict:
    """Run one measurement in a fresh interpreter and return its figures."""
    command = [sys.executable, __file__, "--child", measurement, kind, "--workers", str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_alternating(measurement: str, kinds: tuple[str, ...], workers: int, key: str) -> dict:
    """`key` of `measurement` for each kind: the median of ROUNDS child runs, taken in
    turn (pymw, its peers, pymw again...)."""
    runs: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(ROUNDS):
        for kind in kinds:
            runs[kind].append(run_child(measurement, kind, workers)[key])
    return {kind: statistics.median(values) for kind, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="PyMW generic interface benchmarks")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", nargs=2, metavar=("MEASUREMENT", "KIND"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        measurement, kind = options.child
        print(json.dumps(MEASUREMENTS[measurement](kind, options.workers)))
        return
    workers = options.workers
    _byte_compile()
    peer = "ProcessPoolExecutor"
    print(
        f"PyMW generic interface vs {peer}, {workers} workers, Python {sys.version.split()[0]} "
        f"(medians of {ROUNDS} alternating runs but for c)"
    )

    rate = run_alternating("null", ("pymw", "ppe"), workers, "tasks_per_s")
    print(
        f"(a) null tasks/s, N={NULL_TASKS}: pymw {rate['pymw']:.0f}, "
        f"{peer} {rate['ppe']:.0f}: {rate['pymw'] / rate['ppe']:.2f}x (goal >= 1.0x)"
    )

    took = run_alternating("cpu", ("serial", "pymw", "ppe"), workers, "seconds")
    serial = took["serial"]
    print(
        f"(b) CPU batch ({CPU_TASKS} tasks): serial {serial:.2f} s, pymw {took['pymw']:.2f} s "
        f"(speedup {serial / took['pymw']:.2f}, goal >= 1.9), {peer} {took['ppe']:.2f} s "
        f"(speedup {serial / took['ppe']:.2f})"
    )

    ours, theirs = run_child("many", "pymw", workers), run_child("many", "ppe", workers)
    print(
        f"(c) {MANY_TASKS} null tasks: pymw {ours['seconds']:.1f} s, peak RSS "
        f"{ours['peak_rss_mb']:.0f} MB; {peer} {theirs['seconds']:.1f} s, "
        f"{theirs['peak_rss_mb']:.0f} MB: {ours['peak_rss_mb'] / theirs['peak_rss_mb']:.2f}x "
        f"the RSS (goal <= 1.0x, issue 11)"
    )

    per_task = run_alternating("fresh", ("pymw", "python -c pass"), 1, "per_task_ms")
    ours, baseline = per_task["pymw"], per_task["python -c pass"]
    print(
        f"(d) fresh-process task: pymw {ours:.1f} ms, `python -c pass` {baseline:.1f} ms: "
        f"{ours / baseline:.2f}x (goal <= 1.5x)"
    )

    rate = run_alternating("bytes", ("pymw", "ppe"), workers, "tasks_per_s")
    print(
        f"(e) 1 MB bytes in and out, tasks/s: pymw {rate['pymw']:.0f}, "
        f"{peer} {rate['ppe']:.0f}: {rate['pymw'] / rate['ppe']:.2f}x (goal >= 1.0x)"
    )

    for label, measurement, chunksize in (
        ("f", "map", MAP_CHUNKSIZE),
        ("g", "map_pool_chunks", _pool_map_chunksize(workers)),
    ):
        seconds = run_alternating(measurement, MAP_KINDS, workers, "seconds")
        ours = seconds["pymw"]
        peers = ", ".join(
            f"{kind} {seconds[kind] * 1000:.1f} ms: {seconds[kind] / ours:.2f}x"
            for kind in MAP_KINDS[1:]
        )
        print(
            f"({label}) map of {MAP_TASKS} null tasks, chunksize {chunksize}: pymw "
            f"{ours * 1000:.1f} ms; {peers} (goal >= 1.0x each)"
        )


if __name__ == "__main__":
    main()
