"""A PyMW master program for the kill-and-restart tests: one batch on Slurm.

    python slurm_master.py WORK_DIR LOG_DIR COUNT [--die-before-sbatch|--die-after-sbatch]

It submits `square_once(LOG_DIR, i, 2)` for i in range(COUNT), at most 2 running at once,
prints `got <i> <result>` as results arrive, then `status <interface status as JSON>` and
`answer <sum>`. Run again with the same WORK_DIR after being killed, it must reattach to
the arrays it submitted. The --die options kill it (SIGKILL) around its first sbatch.
"""

from __future__ import annotations

import json
import os
import signal
import sys

from slurm_tasks import square_once

from pymw import pymw
from pymw.interfaces.slurm import SlurmInterface

TASK_SECONDS = 2


def die_around_sbatch(interface: SlurmInterface, when: str) -> None:
    submit = interface.slurm.submit

    def submit_and_die(*args):
        if when == "--die-before-sbatch":
            os.kill(os.getpid(), signal.SIGKILL)
        submit(*args)
        os.kill(os.getpid(), signal.SIGKILL)

    interface.slurm.submit = submit_and_die


def main(argv: list[str]) -> int:
    work_dir, log_dir, count = argv[1], argv[2], int(argv[3])
    interface = SlurmInterface(2, work_dir=work_dir, poll_interval=0.1, state_interval=0.5)
    if len(argv) > 4:
        die_around_sbatch(interface, argv[4])
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [
            master.submit_task(square_once, input_data=(log_dir, i, TASK_SECONDS))
            for i in range(count)
        ]
        inputs = {task.task_id: i for i, task in enumerate(tasks)}
        results = {}
        while len(results) < count:
            task, value = master.get_result()
            results[inputs[task.task_id]] = value
            print(f"got {inputs[task.task_id]} {value}", flush=True)
        print(f"status {json.dumps(interface.get_status())}", flush=True)
    print(f"answer {sum(results.values())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
