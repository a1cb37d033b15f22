"""Task functions for the Slurm tests: module-level, so PyMW can send their source."""

import os
import time


def hold_memory(megabytes, seconds):
    block = bytearray(megabytes << 20)
    time.sleep(seconds)
    return len(block)


def square_once(log_dir, x, seconds):
    """x * x after `seconds`; appends a line to log_dir/<x> each time it runs."""
    with open(os.path.join(log_dir, str(x)), "a") as log:
        log.write(f"ran in job {os.environ.get('SLURM_JOB_ID')}\n")
    time.sleep(seconds)
    return x * x
