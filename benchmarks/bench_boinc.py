#!/usr/bin/env python3
"""BOINC batches on a sandbox project, each figure against a peer measured in this run.

    python benchmarks/bench_boinc.py [--jobs 200] [--batch 60] [--hosts 1,3]

Prints:
  (a) workunit creation per second: one `bin/create_work --stdin` for all jobs (what the
      BOINC interface does) against one `bin/create_work` process per job. Both are the
      SANDBOX's create_work, a Python stand-in with the real tool's command line, not
      BOINC's C++ create_work: most of what the per-job peer pays is starting Python.
  (b) workunits per hour through one project with N real boinc-client hosts (a batch of
      tiny tasks, min_quorum=1, target_nresults=1, the default python3 worker, through
      PyMW_Master + BOINCInterface as a user runs it), against the same batch with one
      host, and one host against the same tasks on the generic local interface; with
      the project's default max_wus_to_send (50 jobs per scheduler reply) the first
      host takes most of a modest batch, so the last line sets it lower.

The hosts are real Debian `boinc-client` processes attached before the batch starts;
the sandbox reports lazily like a real server, so a `Volunteer` tells them to update
every few seconds, as real volunteers' clients do on their own (slower) schedule. A
client starts about one task a second whatever its CPUs: BOINC's overhead per
workunit, not the task, sets the figures.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "helpers"))
import bench_tasks
from boinc_hosts import add_host, wait_attached

from pymw import pymw
from pymw.interfaces.boinc import BOINCInterface
from pymw.interfaces.boinc.workunits import BoincArgs, WorkunitFactory
from pymw.interfaces.generic import GenericInterface
from pymw.testing.boinc_sandbox import Sandbox, Volunteer, reachable_temp_dir
from pymw.testing.boinc_sandbox.constants import MAX_WUS_TO_SEND

#: Seconds the hosts may take to attach (first scheduler request) before a batch.
ATTACH_TIMEOUT = 120
#: Worker processes of the generic-interface peer (this machine's cores, at most).
LOCAL_WORKERS = 2
#: Jobs per scheduler reply small enough that hosts share a modest batch (a client
#: starts about one task a second and may ask again every min_sendwork_interval, 6 s).
TUNED_MAX_WUS_TO_SEND = 8


def job_lines(factory: WorkunitFactory, prefix: str, count: int) -> list[str]:
    script = "print('benchmark')\n"
    return [
        factory.line_for(f"{prefix}_{i:06x}", script, "bench", f"input {i}".encode(), None)
        for i in range(count)
    ]


def creation_rates(jobs: int) -> tuple[float, float]:
    """Workunits per second: bulk `create_work --stdin`, and one process per job."""
    with reachable_temp_dir() as work:
        sandbox = Sandbox.open(work / "project")
        interface = BOINCInterface(sandbox.project_dir, task_path=work / "tasks")
        sandbox.run_tool("stop")  # setup starts the daemons; measure create_work alone
        project = interface.project
        factory = WorkunitFactory(project, interface.checkpoint.batch, BoincArgs(), None)
        batch = str(interface.checkpoint.batch)
        tool = [str(project.root / "bin" / "create_work"), "--appname", "pymw", "--batch", batch]
        try:
            bulk_lines = job_lines(factory, f"pymw_{batch}_b", jobs)
            start = time.perf_counter()
            subprocess.run(
                [*tool, "--stdin"],
                input="\n".join(bulk_lines) + "\n",
                text=True,
                cwd=project.root,
                check=True,
                capture_output=True,
            )
            bulk = jobs / (time.perf_counter() - start)

            single_lines = job_lines(factory, f"pymw_{batch}_s", jobs)
            start = time.perf_counter()
            for line in single_lines:
                subprocess.run(
                    [*tool, *shlex.split(line)], cwd=project.root, check=True, capture_output=True
                )
            single = jobs / (time.perf_counter() - start)
        finally:
            sandbox.stop()
    return bulk, single


def _run_batch(interface, batch: int) -> float:
    """Seconds from the first submit to the last result, checking every result."""
    start = time.perf_counter()
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [master.submit_task(bench_tasks.null_task, input_data=(i,)) for i in range(batch)]
        results = [master.get_result(task)[1] for task in tasks]
    elapsed = time.perf_counter() - start
    if results != list(range(batch)):
        raise SystemExit("bench_boinc: a batch returned wrong results")
    return elapsed


def boinc_per_hour(hosts: int, batch: int, max_wus_to_send: int | None = None) -> float:
    """Workunits per hour through one sandbox project with `hosts` real clients, and
    the project's max_wus_to_send (jobs per scheduler reply) if given."""
    with reachable_temp_dir() as work:
        sandbox = Sandbox.open(work / "project")
        sandbox.start()
        try:
            if max_wus_to_send is not None:
                sandbox.project.set_config_value("max_wus_to_send", str(max_wus_to_send))
            interface = BOINCInterface(sandbox.project_dir, task_path=work / "tasks")
            interface.set_boinc_args(target_nresults=1, min_quorum=1)
            for i in range(hosts):
                add_host(sandbox, f"host{i}")
            if not wait_attached(sandbox, hosts, ATTACH_TIMEOUT):
                raise SystemExit(f"bench_boinc: {hosts} clients did not attach in {work}")
            with Volunteer(sandbox):
                elapsed = _run_batch(interface, batch)
        finally:
            sandbox.stop()
    return batch / elapsed * 3600


def local_per_hour(batch: int) -> float:
    """The same tasks on the generic interface: fresh local worker processes."""
    return batch / _run_batch(GenericInterface(num_workers=LOCAL_WORKERS), batch) * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="workunits for (a)")
    parser.add_argument("--batch", type=int, default=60, help="workunits per batch for (b)")
    parser.add_argument("--hosts", type=int, default=3, help="hosts for (b), against 1 host")
    parser.add_argument(
        "--max-wus-to-send",
        type=int,
        default=TUNED_MAX_WUS_TO_SEND,
        help="the project's jobs per scheduler reply for the last line of (b)",
    )
    options = parser.parse_args()

    bulk, single = creation_rates(options.jobs)
    print(f"BOINC workunit creation, {options.jobs} jobs on a sandbox project:")
    print(
        f"  (a) one create_work --stdin: {bulk:.0f} WU/s; one create_work process per job: "
        f"{single:.1f} WU/s; bulk is {bulk / single:.0f}x faster (both are the sandbox's "
        "Python create_work, not BOINC's C++ one)"
    )

    batch, hosts, tuned = options.batch, options.hosts, options.max_wus_to_send
    local = local_per_hour(batch)
    one = boinc_per_hour(1, batch)
    many = boinc_per_hour(hosts, batch)
    many_tuned = boinc_per_hour(hosts, batch, max_wus_to_send=tuned)
    print(f"BOINC throughput, batches of {batch} tiny workunits, quorum 1, python3 worker:")
    print(
        f"  (b) 1 host: {one:.0f} WU/hour; the generic local interface, {LOCAL_WORKERS} "
        f"workers: {local:.0f} tasks/hour; BOINC is {local / one:.0f}x slower"
    )
    print(
        f"  (b) {hosts} hosts: {many:.0f} WU/hour; 1 host: {one:.0f} WU/hour: {many / one:.2f}x "
        f"(project default max_wus_to_send {MAX_WUS_TO_SEND}: the first host takes "
        "most of the batch)"
    )
    print(
        f"  (b) {hosts} hosts, max_wus_to_send {tuned}: {many_tuned:.0f} WU/hour; 1 host: "
        f"{one:.0f} WU/hour: {many_tuned / one:.2f}x"
    )


if __name__ == "__main__":
    main()
