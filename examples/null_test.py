#!/usr/bin/env python3
"""Send data to workers and back unchanged, and report the throughput in MB/s.

python examples/null_test.py -t 200 -s 64      (200 tasks of 64 KB each way)
"""

import time

from pymw import interfaces, pymw


def null_worker(in_data):
    return in_data


def main():
    parser = interfaces.ArgumentParser(description=__doc__.splitlines()[0])
    count = interfaces.positive_int
    parser.add_argument("-t", "--num_tasks", type=count, default=100, help="number of tasks")
    parser.add_argument("-s", "--task_size", type=count, default=64, help="kilobytes per task")
    options, _ = interfaces.parse_options(parser)
    interface = interfaces.get_interface(options)
    payload = bytes(range(256)) * (options.task_size * 4)

    start = time.time()
    with pymw.PyMW_Master(interface=interface) as master:
        tasks = [
            master.submit_task(null_worker, input_data=(payload,)) for _ in range(options.num_tasks)
        ]
        for task in tasks:
            _, result = master.get_result(task)
            assert result == payload
    elapsed = time.time() - start
    megabytes = 2 * len(payload) * options.num_tasks / 1e6
    print(
        f"{options.num_tasks} tasks, {megabytes:.1f} MB moved in {elapsed:.2f} s: "
        f"{megabytes / elapsed:.1f} MB/s"
    )


if __name__ == "__main__":
    main()
