"""Task functions the benchmarks send to workers (module level: PyMW sends source)."""


def null_task(x):
    return x


def cpu_task(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def reverse_bytes(data):
    return data[::-1]
