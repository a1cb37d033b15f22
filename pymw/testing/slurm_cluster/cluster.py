"""Start, check and stop the one-node cluster: munged, slurmctld and slurmd on this host.

Every process it starts carries `PYMW_SLURM_CLUSTER=<cluster dir>` in its environment,
and so do the `slurmstepd`s that slurmd forks for jobs; stopping ends exactly those
processes (and the job processes below them), found in /proc, whatever pid files say.
That is what makes a leftover cluster harmless: `start` on a directory whose daemons all
still answer reuses them, and on one where any is missing ends the rest and starts over
with clean state.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..boinc_sandbox.processes import (
    end_process,
    free_port,
    is_alive,
    kill_tree_first,
    read_pid,
    spawn,
    wait_until,
)
from .config import PARTITION, ClusterLayout, NodeSpec, slurm_conf

#: The environment variable that marks every process of one cluster.
MARKER_ENV = "PYMW_SLURM_CLUSTER"
#: Debian packages (bookworm) that provide the programs below.
PACKAGES = "slurmctld slurmd slurm-client munge"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sinfo", "scontrol", "sbatch", "squeue", "scancel")
DAEMONS = ("munged", "slurmctld", "slurmd")
#: Seconds the daemons get to bring the node to `idle`.
START_TIMEOUT = 60.0
#: Seconds a process gets to end after SIGTERM before SIGKILL.
STOP_GRACE = 5.0
#: Seconds a Slurm command may take.
COMMAND_TIMEOUT = 30.0
MUNGE_KEY_BYTES = 1024
#: Node states (sinfo %T) of a node that runs jobs.
_TAKING_JOBS = ("idle", "mixed", "allocated")
LOG_TAIL_LINES = 5


class ClusterError(Exception):
    """The cluster cannot start or answer here; the message says why, on one line."""


@dataclass(frozen=True)
class SlurmCluster:
    """A one-node Slurm cluster whose files all live in one directory."""

    layout: ClusterLayout

    @classmethod
    def open(cls, directory: str | os.PathLike) -> SlurmCluster:
        """The cluster in `directory` (made if missing); nothing is started."""
        root = Path(directory).resolve()
        root.mkdir(parents=True, exist_ok=True)
        return cls(ClusterLayout(root))

    # ------------------------------------------------------------------ for users

    @property
    def env(self) -> dict[str, str]:
        """What a Slurm client (sbatch, squeue, a PyMW master) needs to use this cluster."""
        return {"SLURM_CONF": str(self.layout.conf)}

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a Slurm command against this cluster; a failure raises ClusterError."""
        try:
            done = subprocess.run(
                list(argv),
                env=self.environ(),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise ClusterError(f"{argv[0]} failed: {error}") from None
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip().splitlines()
            raise ClusterError(f"{' '.join(argv)}: {message[-1] if message else 'failed'}")
        return done

    def node_state(self) -> str:
        """The node's state as sinfo prints it (idle, mixed, drain, down*, ...), or ''."""
        done = self.run("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    @property
    def node_name(self) -> str:
        return self._node().name

    def is_running(self) -> bool:
        """True if munged, slurmctld and slurmd all run and the node can take jobs."""
        if not all(read_pid(self.layout.pid_file(name)) for name in DAEMONS):
            return False
        return self.node_state().rstrip("*") in (*_TAKING_JOBS, "drained", "draining")

    def status(self) -> dict:
        daemons = {name: read_pid(self.layout.pid_file(name)) for name in DAEMONS}
        return {
            "dir": str(self.layout.root),
            "slurm_conf": str(self.layout.conf),
            "daemons": daemons,
            "node": self.node_state() if all(daemons.values()) else "",
        }

    # ------------------------------------------------------------- start and stop

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start munged, slurmctld and slurmd, and return when the node is idle.

        Harmless when the cluster already runs (it is reused as it is); a cluster with
        any daemon missing is stopped and started again from clean state.
        """
        check_host()
        if self.is_running():
            return
        self.stop()
        self._prepare()
        env = {**self.environ(), MARKER_ENV: str(self.layout.root)}
        layout = self.layout
        spawn(
            [
                "munged",
                "--foreground",
                "--force",
                f"--key-file={layout.munge_key}",
                f"--socket={layout.munge_socket}",
                f"--pid-file={layout.pid_file('munged')}",
                f"--log-file={layout.log_file('munged')}",
                f"--seed-file={layout.munge_dir / 'munged.seed'}",
            ],
            layout.log_dir / "munged.out",
            layout.pid_file("munged"),
            layout.root,
            env=env,
        )
        self._wait(lambda: layout.munge_socket.exists(), 10, "munged did not make its socket")
        conf = str(layout.conf)
        for daemon in ("slurmctld", "slurmd"):
            # -D: stay in the foreground, so the pid is the daemon's; slurmctld -c: no
            # jobs or node states from a previous run.
            argv = [daemon, "-D", "-f", conf, *(["-c"] if daemon == "slurmctld" else [])]
            spawn(
                argv,
                layout.log_dir / f"{daemon}.out",
                layout.pid_file(daemon),
                layout.root,
                env=env,
            )
        self._wait(lambda: self.node_state() == "idle", timeout, "the node did not become idle")

    def stop(self) -> None:
        """End every process of this cluster: daemons, job steps and their jobs."""
        # Job steps first, at once: a slurmstepd waits out SIGTERM. munged last: the
        # others talk to it while they shut down.
        processes = sorted(self.processes(), key=lambda pid: _STOP_ORDER.index(_program(pid)))
        for pid in processes:
            if _program(pid) == "slurmstepd":
                kill_tree_first(pid, 0)  # the job's processes, then the step
            else:
                end_process(pid, STOP_GRACE)  # slurmctld hangs if its helper dies first
        self.layout.munge_socket.unlink(missing_ok=True)

    def reset(self) -> None:
        """Cancel every job and make the node idle again (between tests)."""
        self.run("scancel", "--full", f"--partition={PARTITION}", check=False)
        if self.node_state().rstrip("*") not in _TAKING_JOBS:
            self.run(
                "scontrol", "update", f"nodename={self.node_name}", "state=resume", check=False
            )
        self._wait(
            lambda: self.node_state() == "idle", START_TIMEOUT, "the node did not return to idle"
        )

    # --------------------------------------------------------------- internals

    def _node(self) -> NodeSpec:
        try:
            output = subprocess.run(
                ["slurmd", "-C"], capture_output=True, text=True, timeout=COMMAND_TIMEOUT
            ).stdout
            return NodeSpec.parse(output)
        except (OSError, subprocess.TimeoutExpired, ValueError) as error:
            raise ClusterError(
                f"cannot read this host's hardware with `slurmd -C`: {error}"
            ) from None

    def _prepare(self) -> None:
        """Fresh directories and config; the munge key is made once and kept."""
        layout = self.layout
        for directory in (layout.state_dir, layout.spool_dir):
            shutil.rmtree(directory, ignore_errors=True)
        for directory in (layout.state_dir, layout.spool_dir, layout.log_dir, layout.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        # munged wants its socket's directory open to all, and its key private.
        layout.munge_dir.mkdir(exist_ok=True)
        layout.munge_dir.chmod(0o755)
        if not layout.munge_key.exists():
            descriptor = os.open(layout.munge_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as key:
                key.write(os.urandom(MUNGE_KEY_BYTES))
        ports = _free_ports(2)
        layout.conf.write_text(slurm_conf(layout, self._node(), *ports), encoding="utf-8")

    def processes(self) -> list[int]:
        """Pids of this cluster's processes (never this process or its parents)."""
        marker = f"{MARKER_ENV}={self.layout.root}".encode() + b"\0"
        ours = {os.getpid(), os.getppid()}
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in ours:
                continue
            with contextlib.suppress(OSError):
                if marker in (entry / "environ").read_bytes() + b"\0":
                    found.append(int(entry.name))
        return [pid for pid in found if is_alive(pid)]

    def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        if not wait_until(condition, timeout):
            raise ClusterError(f"{what} in {timeout:.0f} s; {self._log_tails()}")

    def _log_tails(self) -> str:
        tails = []
        for daemon in DAEMONS:
            for path in (self.layout.log_file(daemon), self.layout.log_dir / f"{daemon}.out"):
                with contextlib.suppress(OSError):
                    lines = path.read_text(errors="replace").strip().splitlines()
                    if lines:
                        tails.append(f"{path.name}: {' | '.join(lines[-LOG_TAIL_LINES:])}")
        return "; ".join(tails) or f"no logs in {self.layout.log_dir}"


def check_host() -> None:
    """One line saying what is missing for a cluster on this host, if anything is."""
    if not sys.platform.startswith("linux"):
        raise ClusterError("the test cluster runs on Linux only")
    missing = [name for name in PROGRAMS if shutil.which(name) is None]
    if missing:
        raise ClusterError(
            f"{', '.join(missing)} not found; install Debian's {PACKAGES} "
            "(bash .ci/setup-debian.sh)"
        )
    if os.geteuid() != 0:
        raise ClusterError("the test cluster runs slurmd, which launches jobs as root: run as root")


#: Programs of a cluster in the order `stop` ends them.
_STOP_ORDER = ("slurmstepd", "slurmd", "slurmctld", "", "munged")


def _program(pid: int) -> str:
    """The program a cluster process runs, as named in _STOP_ORDER ("" if another)."""
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""
    name = Path(argv0.split(":")[0]).name
    return name if name in _STOP_ORDER else ""


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
