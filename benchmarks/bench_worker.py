"""Size and startup of the built worker: `python benchmarks/bench_worker.py [--dist dist/pyboinc]`.

- first download for one platform: executable + stdlib zip, raw and gzip-compressed (BOINC
  can serve app-version files with <gzip/>, so the gzip figure is what a host fetches);
- warm startup (median of --runs) of an empty task through the worker, against
  `python -c pass` with the interpreter running this script. Goals: at most 12 MB total
  (8 MB stretch); onefile at most 5x, onedir at most 2x.
"""

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1e6


def gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9))


def median_seconds(command: list[str], cwd: Path, runs: int) -> float:
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)  # warm the caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", default="dist/pyboinc")
    parser.add_argument("--os", default="linux")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    worker_dir = Path(args.dist) / args.os
    manifest = json.loads((worker_dir / "manifest.json").read_text())
    files = {entry["role"]: worker_dir / entry["file"] for entry in manifest["files"]}
    exe, stdlib_zip = files["executable"], files["stdlib"]

    raw = exe.stat().st_size + stdlib_zip.stat().st_size
    gzipped = gzip_size(exe) + gzip_size(stdlib_zip)
    print(f"platform {manifest['platform']} (portable: {manifest['portable']})")
    print(f"  executable {exe.stat().st_size / MB:6.2f} MB   gzip {gzip_size(exe) / MB:6.2f} MB")
    print(
        f"  stdlib zip {stdlib_zip.stat().st_size / MB:6.2f} MB   "
        f"gzip {gzip_size(stdlib_zip) / MB:6.2f} MB"
    )
    print(f"  first download {raw / MB:.2f} MB, gzip {gzipped / MB:.2f} MB (goal 12, stretch 8)")

    with tempfile.TemporaryDirectory() as scratch:
        slot = Path(scratch)
        (slot / "task.py").write_text("pass\n")
        (slot / "in").write_text("")
        baseline = median_seconds([sys.executable, "-c", "pass"], slot, args.runs)
        print(f"startup, warm median of {args.runs}:")
        print(f"  python -c pass ({sys.executable}): {baseline * 1000:.0f} ms")
        variants = [("onefile", exe, 5)]
        if "executable-onedir" in files:
            variants.append(("onedir", files["executable-onedir"], 2))
        for label, program, goal in variants:
            command = [str(program.resolve()), "task.py", str(stdlib_zip.resolve()), "in", "out"]
            seconds = median_seconds(command, slot, args.runs)
            print(f"  {label}: {seconds * 1000:.0f} ms = {seconds / baseline:.1f}x (goal {goal}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
