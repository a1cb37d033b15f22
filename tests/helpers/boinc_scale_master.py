"""A PyMW master program for the kill-and-restart test: one batch on a BOINC project.

    python boinc_scale_master.py PROJECT_HOME TASK_DIR COUNT

It submits `square_or_lie(i)` for i in range(COUNT), prints `got <i> <result>` for each
result as it arrives (in any order) and finally `answer <sum of the results>`. Run again
from the same TASK_DIR after being killed, it must reattach to the batch it started, as a
user's program does: the test kills it with SIGKILL at chosen moments and compares the
final answer with an uninterrupted run's.
"""

from __future__ import annotations

import sys

from boinc_scale_tasks import square_or_lie

from pymw import pymw
from pymw.interfaces.boinc import BOINCInterface


def main(argv: list[str]) -> int:
    project_home, task_dir, count = argv[1], argv[2], int(argv[3])
    interface = BOINCInterface(project_home, task_path=task_dir)
    interface.set_boinc_args(target_nresults=1, min_quorum=1)
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        inputs = {
            master.submit_task(square_or_lie, input_data=(i,)).task_id: i for i in range(count)
        }
        results: dict[int, int] = {}
        while len(results) < count:
            task, value = master.get_result()
            results[inputs[task.task_id]] = value
            print(f"got {inputs[task.task_id]} {value}", flush=True)
    print(f"answer {sum(results.values())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
