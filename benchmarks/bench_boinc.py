#!/usr/bin/env python3
"""Workunit creation rate on a BOINC project: one `create_work --stdin` for many jobs
(what the BOINC interface does) against one `create_work` process per job.

    python benchmarks/bench_boinc.py [--jobs 200]

Runs against a fresh sandbox project (the stand-in for a BOINC server; its bin/ tools
have the real tools' command lines) with the pymw app installed by the BOINC interface.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from pymw.interfaces.boinc import BOINCInterface
from pymw.interfaces.boinc.workunits import BoincArgs, WorkunitFactory
from pymw.testing.boinc_sandbox import Sandbox


def job_lines(factory: WorkunitFactory, prefix: str, count: int) -> list[str]:
    script = "print('benchmark')\n"
    return [
        factory.line_for(f"{prefix}_{i:06x}", script, "bench", f"input {i}".encode(), None)
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    jobs = parser.parse_args().jobs
    with tempfile.TemporaryDirectory() as work:
        sandbox = Sandbox.open(Path(work) / "project")
        interface = BOINCInterface(sandbox.project_dir, task_path=Path(work) / "tasks")
        project = interface.project
        factory = WorkunitFactory(project, 1, BoincArgs(), None)
        tool = [str(project.root / "bin" / "create_work"), "--appname", "pymw", "--batch", "1"]
        try:
            bulk_lines = job_lines(factory, "pymw_1_b", jobs)
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

            single_lines = job_lines(factory, "pymw_1_s", jobs)
            start = time.perf_counter()
            for line in single_lines:
                subprocess.run(
                    [*tool, *shlex.split(line)], cwd=project.root, check=True, capture_output=True
                )
            single = jobs / (time.perf_counter() - start)
        finally:
            sandbox.stop()
    print(f"BOINC workunit creation, {jobs} jobs on the sandbox project:")
    print(
        f"  one create_work --stdin: {bulk:.0f} WU/s; one process per job: {single:.1f} WU/s; "
        f"bulk is {bulk / single:.1f}x faster"
    )


if __name__ == "__main__":
    main()
