"""`pymw-slurm-cluster start|stop|status|env --dir D [--json]`.

`start` brings up the one-node cluster in D (or reuses the one running there) and prints
its status and the line that points Slurm's clients at it:

    $ pymw-slurm-cluster start --dir /tmp/slurm
    ...
    export SLURM_CONF=/tmp/slurm/slurm.conf

so `eval "$(pymw-slurm-cluster env --dir /tmp/slurm)"` in a shell makes `sbatch`,
`squeue` and `python examples/monte_pi.py -i slurm` use it. `stop` ends the daemons and
any job still running. Errors are one line with exit status 2.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..one_line_parser import OneLineParser
from .cluster import ClusterError, SlurmCluster

PROG = "pymw-slurm-cluster"


def _parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        error_type=ClusterError,
        prog=PROG,
        description="A real one-node Slurm cluster on this host.",
    )
    parser.add_argument("command", choices=("start", "stop", "status", "env"))
    parser.add_argument("--dir", required=True, type=Path, help="the cluster's directory")
    parser.add_argument("--json", action="store_true", help="status as JSON")
    return parser


def _exports(cluster: SlurmCluster) -> str:
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in cluster.env.items())


def _print_status(status: dict) -> None:
    print(f"dir:        {status['dir']}")
    for name, pid in status["daemons"].items():
        print(f"{name + ':':<11} {f'running (pid {pid})' if pid else 'not running'}")
    print(f"node:       {status['node'] or 'not answering'}")


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command != "start" and not (args.dir / "slurm.conf").exists():
            raise ClusterError(f"no cluster in {args.dir}; make one with `{PROG} start --dir D`")
        cluster = SlurmCluster.open(args.dir)
        if args.command == "start":
            cluster.start()
            _print_status(cluster.status())
            print(_exports(cluster))
        elif args.command == "stop":
            cluster.stop()
        elif args.command == "env":
            print(_exports(cluster))
        elif args.json:
            print(json.dumps(cluster.status(), indent=2))
        else:
            _print_status(cluster.status())
    except (ClusterError, OSError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    return 0
