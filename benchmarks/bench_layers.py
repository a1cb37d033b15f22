"""A package layer on the wire against its wheels: `python benchmarks/bench_layers.py`.

Builds the layer for `--with` (default numpy==2.2.6; `pip download`, so PyPI must be
reachable) as `build-workers --with` does, then prints:

- bytes on the wire, as BOINC sends the layer: the app version the BOINC interface makes
  says whether it is gzip-compressed (`<gzip/>` in version.xml), and the figure follows it;
- the peer, measured in the same run: the wheels' bytes (what `pip install` downloads);
- the zip itself: its members are deflated already, and gzip on top gains about 1.5%;
- on the host: the unpacked cache, the first task's unpacking and a later task's lookup.
"""

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "build")]

from pyboinc_build import layers as layer_build  # noqa: E402
from pyboinc_build import platform_data  # noqa: E402

from pyboinc import layers  # noqa: E402
from pymw.interfaces.boinc.app_versions import frozen_worker_versions  # noqa: E402

MB = 1e6
STDLIB_ZIP = "1.00_python311.zip"


def wire_bytes(layer: Path, platform: str) -> tuple[int, bool]:
    """The layer's bytes as the BOINC interface deploys it, and whether it asks for gzip."""
    with tempfile.TemporaryDirectory() as scratch:
        os_dir = Path(scratch) / "linux"
        os_dir.mkdir()
        exe = f"pymw_1.03_{platform}"
        (os_dir / exe).write_bytes(b"")  # only the layer is measured
        (os_dir / STDLIB_ZIP).write_bytes(b"")
        (os_dir / layer.name).symlink_to(layer)
        files = [
            {"file": exe, "role": "executable"},
            {"file": STDLIB_ZIP, "role": "stdlib"},
            {"file": layer.name, "role": "layer"},
        ]
        manifest = {"format": "pymw-worker-manifest/1", "os": "linux", "platform": platform}
        manifest |= {"legacy_platforms": [], "app_version": "1.03", "files": files}
        (os_dir / "manifest.json").write_text(json.dumps(manifest))
        [version] = frozen_worker_versions(scratch, STDLIB_ZIP)
        [item] = [f for f in version.files if f.source and f.source.name == layer.name]
        data = item.data()
        return (len(gzip.compress(data, compresslevel=9)) if item.gzip else len(data)), item.gzip


def tree_bytes(tree: str) -> int:
    return sum(p.stat().st_size for p in Path(tree).rglob("*") if p.is_file())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--with", dest="packages", action="append", default=None)
    args = parser.parse_args(argv)
    specs = layer_build.check_specs(args.packages or ["numpy==2.2.6"], "--with")
    target = platform_data.load("linux").target_for()
    with tempfile.TemporaryDirectory() as scratch:
        report = layer_build.build(
            specs,
            layer_version=layer_build.DEFAULT_LAYER_VERSION,
            boinc_platform=target.boinc_platform,
            wheel_platforms=target.wheel_platforms,
            staging=Path(scratch),
        )
        size = report.path.stat().st_size
        wire, gzipped = wire_bytes(report.path, target.boinc_platform)
        print(f"layer {report.name} ({', '.join(report.packages)})")
        print(f"  wheels (peer, pip's download)  {report.wheel_bytes / MB:7.2f} MB")
        print(f"  layer zip                      {size / MB:7.2f} MB")
        print(
            f"  on the wire (BOINC, gzip {'on' if gzipped else 'off'})    {wire / MB:7.2f} MB: "
            f"{wire / report.wheel_bytes:.3f}x the wheels"
        )
        started = time.perf_counter()
        [tree] = layers.activate([str(report.path)], after="")
        unpacked = time.perf_counter() - started
        started = time.perf_counter()
        layers.activate([str(report.path)], after="")
        warm = time.perf_counter() - started
        print(f"  unpacked once per host         {tree_bytes(tree) / MB:7.2f} MB")
        print(f"  first task unpacks it in {unpacked:.2f} s; later ones: {warm * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
