"""The grid simulator: try scheduling policies on a simulated desktop grid before deploying.

A task function here does not compute a result: called with a simulated worker (and the
task's arguments) it returns how many CPU-seconds the task takes on that worker, as in
PyMW 0.4. The simulator runs it in the master's process (it is the user's own code, never
a worker's output), then replays the worker's availability trace to find when the task
ends. Nothing runs for real, so 100,000 tasks on 1,000 workers take seconds.

How it plugs into the master: an event-driven core (`core`), not a thread per task.
`execute` computes a job's finish time and pushes an event on a heap; `wait()` pops the
earliest events and advances simulated time to them. Workers (`workers`) are free when
their task ends and their trace says they are available. Policies (`policies`) plug in
through the master's `scheduler_func`, and `replicas=k` runs k copies of each task on k
workers; the first result wins and the other copies are stopped.

Worker availability is a list of `(length, fraction)` intervals; `read_fta_workers`
(`traces`) builds it from a Failure Trace Archive `event_trace.tab` file to replay a
real desktop grid, and `write_fta_trace` writes synthetic ones. `BoincProject` with a
`BoincPolicy` (`boinc_model`) plays a BOINC project instead of a plain queue: scheduler
RPCs, lazy reporting, deadlines, quorum and host errors.

Runs are reproducible: simulated time, ties and worker order are deterministic, so a
seeded program gives identical results. Submit inside `with interface.hold():`, so that
the clock never runs ahead of the submissions.
"""

from .boinc_model import BoincPolicy, BoincProject
from .core import EventCore
from .engine import IDLE_WINDOW, GridSimulatorInterface
from .policies import fastest_worker_first, first_come
from .traces import read_fta_workers, write_fta_trace
from .workers import ALWAYS_AVAILABLE, Availability, ReplicaSet, SimWorker, generate_workers

__all__ = [
    "ALWAYS_AVAILABLE",
    "IDLE_WINDOW",
    "Availability",
    "BoincPolicy",
    "BoincProject",
    "EventCore",
    "GridSimulatorInterface",
    "ReplicaSet",
    "SimWorker",
    "fastest_worker_first",
    "first_come",
    "generate_workers",
    "read_fta_workers",
    "write_fta_trace",
]
