"""Bytes on the wire and start-up of the built worker: `python benchmarks/bench_worker.py`.

- bytes on the wire for one platform: the app version's files as BOINC sends them, the
  ones the BOINC interface marks `<gzip/>` in version.xml gzip-compressed (at gzip's
  default level, as the server's tools run it). Goal 12 MB, stretch 8 MB. Anchors:
  PyBOINC (2009) 35 MB, and python-build-standalone's install_only archives 30-42 MB;
- start-up: a trivial task (`pass`) through the worker, after its first start on the host
  (the runtime is unpacked in `pyboinc-cache/`), against Debian's `/usr/bin/python3
  script.py` (not a pyenv interpreter, whose .pth processing makes it 3-5 times slower).
  The two are run in turn, so that both see the same load; medians of wall and CPU time.
  Goal: at most 2x.
"""

import argparse
import gzip
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1e6
PEER = Path("/usr/bin/python3")
WIRE_GOAL, WIRE_STRETCH = 12, 8
ANCHORS = (("PyBOINC 2009", "35 MB"), ("python-build-standalone install_only", "30-42 MB"))
STARTUP_GOAL = 2.0


def wire_bytes(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def paired_medians(commands: dict[str, list[str]], cwd: Path, runs: int) -> dict:
    for command in commands.values():  # warm up; the worker unpacks its runtime here
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    samples = {label: [] for label in commands}
    for _ in range(runs):
        for label, command in commands.items():
            samples[label].append(timed(command, cwd))
    return {
        label: tuple(statistics.median(values) for values in zip(*runs_of, strict=True))
        for label, runs_of in samples.items()
    }


def print_wire(dist: Path, stdlib_zip: str, platform: str) -> None:
    """The files of the app version the BOINC interface would deploy for `platform`."""
    from pymw.interfaces.boinc.app_versions import frozen_worker_versions

    [version] = [v for v in frozen_worker_versions(dist, stdlib_zip) if v.platform == platform]
    total = 0
    print("bytes on the wire (as BOINC sends the app version: gzip where version.xml says so):")
    for item in version.files:
        size = item.source.stat().st_size
        sent = wire_bytes(item.source) if item.gzip else size
        total += sent
        how = "gzip" if item.gzip else "raw"
        print(f"  {item.source.name:40} {size / MB:6.2f} MB -> {how:4} {sent / MB:5.2f} MB")
    verdict = "met" if total <= WIRE_GOAL * MB else "MISSED"
    print(f"  total {total / MB:.2f} MB (goal {WIRE_GOAL}, stretch {WIRE_STRETCH}: {verdict})")
    print("  anchors: " + ", ".join(f"{name} {size}" for name, size in ANCHORS))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default="dist/pyboinc")
    parser.add_argument("--os", default="linux")
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args(argv)
    worker_dir = Path(args.dist) / args.os
    manifest = json.loads((worker_dir / "manifest.json").read_text())
    roles = {entry["role"]: worker_dir / entry["file"] for entry in manifest["files"]}
    print(f"platform {manifest['platform']} (portable: {manifest['portable']})")
    print_wire(Path(args.dist), roles["stdlib"].name, manifest["platform"])
    if not PEER.exists():
        print(f"start-up: skipped, no {PEER} (the peer is Debian's python3)")
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        project, slot = Path(scratch) / "project", Path(scratch) / "slot"
        project.mkdir()
        slot.mkdir()
        exe = Path(shutil.copy2(roles["executable"], project))
        stdlib_zip = Path(shutil.copy2(roles["stdlib"], project))
        (slot / "task.py").write_text("pass\n")
        (slot / "in").write_text("")
        commands = {
            "python3 task.py": [str(PEER), "task.py"],
            "worker": [str(exe), "task.py", str(stdlib_zip), "in", "out"],
        }
        medians = paired_medians(commands, slot, args.runs)
    (peer_wall, peer_cpu), (wall, cpu) = medians["python3 task.py"], medians["worker"]
    print(f"start-up of a trivial task, median of {args.runs} paired runs (rough on a busy host):")
    print(f"  {PEER} task.py: {peer_wall * 1000:5.0f} ms wall, {peer_cpu * 1000:5.0f} ms CPU")
    print(f"  worker (runtime cached): {wall * 1000:5.0f} ms wall, {cpu * 1000:5.0f} ms CPU")
    print(
        f"  ratio {wall / peer_wall:.1f}x wall, {cpu / peer_cpu:.1f}x CPU "
        f"(goal {STARTUP_GOAL:.0f}x: {'met' if wall / peer_wall <= STARTUP_GOAL else 'MISSED'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
