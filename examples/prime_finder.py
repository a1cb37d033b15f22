#!/usr/bin/env python3
"""Count the primes below a bound, one range of numbers per task.

python examples/prime_finder.py -m 2000000
"""

import itertools
import time

from pymw import interfaces, pymw


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    divisor = 3
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 2
    return True


def count_primes(start, stop):
    return sum(1 for n in range(start, stop) if is_prime(n))


def main():
    parser = interfaces.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-m",
        "--max",
        type=interfaces.positive_int,
        default=500_000,
        help="upper bound (default 500,000)",
    )
    parser.add_argument(
        "--tasks", type=interfaces.positive_int, help="number of tasks (default 4 per worker)"
    )
    options, _ = interfaces.parse_options(parser)
    interface = interfaces.get_interface(options)
    num_tasks = options.tasks or 4 * interface.num_workers
    bounds = [options.max * i // num_tasks for i in range(num_tasks + 1)]

    start = time.time()
    with pymw.PyMW_Master(interface=interface) as master:
        for low, high in itertools.pairwise(bounds):
            master.submit_task(count_primes, input_data=(low, high), dep_funcs=(is_prime,))
        total = sum(master.get_result()[1] for _ in range(num_tasks))
    print(f"{total} primes below {options.max}")
    print(f"Tasks: {num_tasks}, time: {time.time() - start:.2f} s")


if __name__ == "__main__":
    main()
