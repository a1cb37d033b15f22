"""What a Slurm job state means for the PyMW task an array element runs.

A task normally ends through its own files: the batch script records the worker's exit
status (the "done" marker) next to the output. Slurm's state matters for the elements
that never get there, and for the ones that wait in vain::

    RUNNING, COMPLETING, ...        ACTIVE   wait for the marker
    PENDING (Priority, Resources)   WAITING  wait: the cluster is busy
    PENDING (a node drained/down,   STUCK    wait up to the stuck timeout, then cancel
      partition down, held, ...)             the element and fail its task with the reason
    COMPLETED, FAILED by exit code  ENDED    the marker is due (a shared filesystem may
                                             show it late): wait a grace time for it
    CANCELLED, TIMEOUT,             KILLED   fail the task with Slurm's state and reason
      OUT_OF_MEMORY, DEADLINE,               (running it again would end the same way)
      FAILED by a signal
    NODE_FAIL, PREEMPTED, BOOT_FAIL LOST     the machine failed, not the task: the master
                                             retries it under max_retries
"""

from __future__ import annotations

import enum

from .commands import ElementState


class Fate(enum.Enum):
    ACTIVE = "active"
    WAITING = "waiting"
    STUCK = "stuck"
    ENDED = "ended"
    KILLED = "killed"
    LOST = "lost"


ACTIVE_STATES = frozenset(
    {"RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESIZING"}
)
PENDING_STATES = frozenset(
    {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "STOPPED"}
)
KILLED_STATES = frozenset({"CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE", "REVOKED"})
LOST_STATES = frozenset({"NODE_FAIL", "PREEMPTED", "BOOT_FAIL"})
#: Phrases of pending reasons that no amount of waiting for others' jobs resolves: only
#: an administrator (or the user) can. Slurm prints some as codes, some as sentences.
STUCK_REASON_PHRASES = (
    "DOWN, DRAINED",  # "Nodes required for job are DOWN, DRAINED or reserved ..."
    "ReqNodeNotAvail",
    "NodeDown",
    "PartitionDown",
    "PartitionInactive",
    "PartitionNodeLimit",
    "PartitionTimeLimit",
    "BadConstraints",
    "DependencyNeverSatisfied",
    "JobHeldAdmin",
    "JobHeldUser",
    "InvalidAccount",
    "InvalidQOS",
    "launch failed requeued held",
)


def fate_of(element: ElementState) -> Fate:
    state = element.state
    if state in ACTIVE_STATES:
        return Fate.ACTIVE
    if state in PENDING_STATES:
        reason = element.reason
        return Fate.STUCK if any(p in reason for p in STUCK_REASON_PHRASES) else Fate.WAITING
    if state == "COMPLETED" or (state == "FAILED" and not element.signal):
        return Fate.ENDED
    if state == "FAILED" or state in KILLED_STATES:
        return Fate.KILLED
    if state in LOST_STATES:
        return Fate.LOST
    return Fate.WAITING  # a state this table does not know yet: keep watching


def describe(element: ElementState) -> str:
    """`Slurm job 12_3 TIMEOUT (TimeLimit, signal 15)`: the state in Slurm's words."""
    details = [element.reason] if element.reason and element.reason != "None" else []
    if element.signal:
        details.append(f"signal {element.signal}")
    elif element.exit_code:
        details.append(f"exit code {element.exit_code}")
    suffix = f" ({', '.join(details)})" if details else ""
    return f"Slurm job {element.array_job}_{element.index} {element.state}{suffix}"
