"""Scheduling policies for the master's `scheduler_func`, over simulated workers."""

from __future__ import annotations

from typing import Any


def first_come(tasks: list, workers: list) -> tuple[Any, Any]:
    """The oldest task on the worker that has been idle longest (the master's default)."""
    return tasks[0], workers[0]


def fastest_worker_first(tasks: list, workers: list) -> tuple[Any, Any]:
    """The oldest task on the fastest idle worker."""
    return tasks[0], max(workers, key=lambda worker: worker.speed)
