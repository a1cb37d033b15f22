"""Task functions for the tests: module-level, so PyMW can send their source."""

import os
import time


def square(x):
    return x * x


def echo(*args):
    return args


def slow_square(x, delay):
    time.sleep(delay)
    return x * x


def divide(a, b):
    return a / b


def fail_with_custom_error():
    class LocalProblem(Exception):
        pass

    raise LocalProblem("something specific went wrong")


def die_hard():
    os.kill(os.getpid(), 9)


def die_once(marker):
    """Dies the first time (marker file absent), succeeds on the retry."""
    if not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write("died once")
        os._exit(7)
    return "second try"


def chatty(x):
    print("hello from the worker", x)
    return x


def read_data_file(name):
    with open(name) as handle:
        return handle.read()


def count_words(chunk):
    return [len(line.split()) for line in chunk]


def total(values):
    return sum(values)


def count_bytes(ranges):
    """The bytes of each [path, start, end] range, read back from its file."""
    counts = []
    for path, start, end in ranges:
        with open(path, "rb") as handle:
            handle.seek(start)
            counts.append(len(handle.read(end - start)))
    return counts


def slow_identity(chunk):
    """`chunk` back after sleeping its first item's seconds: maps that end out of order."""
    time.sleep(chunk[0])
    return chunk


def unsendable():
    return object()


def use_module():
    return math.sqrt(16.0)  # noqa: F821 - `math` comes from modules=("math",)


def helper_value():
    return 41


def uses_helper():
    return helper_value() + 1


def worker_pid():
    return os.getpid()


def nap_then_pid(seconds):
    time.sleep(seconds)
    return os.getpid()


def big_bytes(size):
    return b"x" * size


def set_environment(name, value):
    os.environ[name] = value


def get_environment(name):
    return os.environ.get(name)


def fail_to_initialize():
    raise ValueError("no database here")


def loaded_pymw_modules():
    import sys

    return sorted(name for name in sys.modules if name == "pymw" or name.startswith("pymw."))
