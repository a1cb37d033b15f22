#!/usr/bin/env python3
"""Summary statistics of simulated sensor data with numpy, one chunk per task.

python examples/numpy_stats.py                           # all local cores
nox -s build-workers -- --with numpy==2.2.6              # a worker with a numpy layer, then:
python examples/numpy_stats.py -c dist/pyboinc -a 1.00_python311.zip   # frozen worker
python examples/numpy_stats.py -i boinc -p <project> -c dist/pyboinc -a 1.00_python311.zip
"""

import time

import numpy

from pymw import interfaces, pymw


def chunk_stats(seed, samples):
    """Mean, variance and a histogram of one chunk of noisy readings (numpy arrays)."""
    rng = numpy.random.default_rng(seed)
    readings = 20.0 + 0.5 * numpy.sin(numpy.linspace(0, 40, samples)) + rng.normal(0, 2, samples)
    counts, _ = numpy.histogram(readings, bins=12, range=(10.0, 30.0))
    return {
        "n": samples,
        "mean": float(readings.mean()),
        "m2": float(((readings - readings.mean()) ** 2).sum()),
        "histogram": counts,
        "numpy": numpy.__version__,
    }


def combine(parts):
    """Chan et al.'s pairwise update: the mean and variance of all chunks together."""
    n, mean, m2 = 0, 0.0, 0.0
    for part in parts:
        delta = part["mean"] - mean
        total = n + part["n"]
        mean += delta * part["n"] / total
        m2 += part["m2"] + delta * delta * n * part["n"] / total
        n = total
    return n, mean, m2 / (n - 1)


def main():
    parser = interfaces.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-s", "--samples", type=int, default=200_000, help="readings per task (default 200,000)"
    )
    options, _ = interfaces.parse_options(parser)
    if options.samples < 2:
        parser.error("--samples must be at least 2")
    interface = interfaces.get_interface(options)

    start = time.time()
    with pymw.PyMW_Master(interface=interface) as master:
        tasks = [
            master.submit_task(chunk_stats, input_data=(seed, options.samples), modules=("numpy",))
            for seed in range(interface.num_workers)
        ]
        parts = [master.get_result(task)[1] for task in tasks]
    n, mean, variance = combine(parts)
    histogram = sum(part["histogram"] for part in parts)
    print(f"Readings: {n}, mean {mean:.4f}, variance {variance:.4f}")
    print(f"Histogram (10-30, 12 bins): {histogram.tolist()}")
    print(f"Worker numpy: {', '.join(sorted({part['numpy'] for part in parts}))}")
    print(f"Calculation time: {time.time() - start:.2f} s")


if __name__ == "__main__":
    main()
