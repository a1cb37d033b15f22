"""The test cluster's `slurm.conf`: one node (this host, as `slurmd -C` sees it), one
partition, settings that work in a container without systemd or cgroup delegation.

Every choice that differs from Slurm's defaults is commented in the file it writes, so a
reader of `<dir>/slurm.conf` sees why. The layout (what lives where under the cluster
directory) is `ClusterLayout`; the text is `slurm_conf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The partition every test job runs in (the default one).
PARTITION = "pymw"
#: Jobs that may share one core. slurmctld starts pending jobs about once a second
#: (measured: 2 jobs/s on 2 cores with one job per core), so a batch of tiny tasks is
#: bound by the number of jobs a pass can start, not by the CPUs. The node keeps its real
#: CPU count; the partition lets several small jobs share a core, as a throughput
#: partition on a real cluster may.
JOBS_PER_CORE = 8
#: Memory (MiB) a job gets when it asks for none: memory is a consumable resource, so a
#: job asking for none would otherwise take the whole node.
DEFAULT_MEM_PER_CPU = 256


@dataclass(frozen=True)
class ClusterLayout:
    """Where the cluster keeps its files, all under one private directory."""

    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def munge_dir(self) -> Path:
        return self.root / "munge"

    @property
    def munge_key(self) -> Path:
        return self.munge_dir / "munge.key"

    @property
    def munge_socket(self) -> Path:
        return self.munge_dir / "munge.socket"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    def pid_file(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        return self.log_dir / f"{daemon}.log"


@dataclass(frozen=True)
class NodeSpec:
    """This host as `slurmd -C` reports it: its name and the hardware words."""

    name: str
    hardware: str  # "CPUs=2 Boards=1 SocketsPerBoard=1 ... RealMemory=24105"

    @classmethod
    def parse(cls, slurmd_c_output: str) -> NodeSpec:
        """Read the `NodeName=... CPUs=...` line that `slurmd -C` prints."""
        for line in slurmd_c_output.splitlines():
            if line.startswith("NodeName="):
                name_word, _, hardware = line.partition(" ")
                return cls(name_word.removeprefix("NodeName="), hardware.strip())
        raise ValueError(f"no NodeName= line in `slurmd -C` output: {slurmd_c_output!r}")


def slurm_conf(layout: ClusterLayout, node: NodeSpec, ctld_port: int, slurmd_port: int) -> str:
    """The whole slurm.conf for a one-node cluster on this host."""
    root = layout
    return f"""\
# A one-node Slurm cluster for PyMW's tests, written by pymw.testing.slurm_cluster.
# Everything lives under {root.root}; the daemons listen on 127.0.0.1 only.
ClusterName=pymw-test
SlurmctldHost={node.name}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
# The tests run as root in a container: the daemons run as root too.
SlurmUser=root
SlurmdUser=root
# A private munged (its own key and socket); clients find it through this line.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root.munge_socket}
StateSaveLocation={root.state_dir}
SlurmdSpoolDir={root.spool_dir}
SlurmctldPidFile={root.pid_file("slurmctld")}
SlurmdPidFile={root.pid_file("slurmd")}
SlurmctldLogFile={root.log_file("slurmctld")}
SlurmdLogFile={root.log_file("slurmd")}
# No systemd and no cgroup delegation here: track job processes by parent pid, bind no
# tasks, and enforce memory by sampling (every second) and killing a step over its limit.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# No slurmdbd, hence no sacct: job state comes from slurmctld (squeue), which keeps a
# finished job for MinJobAge seconds.
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=300
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU={DEFAULT_MEM_PER_CPU}
MpiDefault=none
SchedulerType=sched/backfill
# Schedule a submitted batch job at once, not up to 3 s later, and look at every pending
# job each second, not each minute (array elements start in those passes).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1
# A node set DOWN returns when its slurmd registers again; timeouts are seconds long.
ReturnToService=2
KillWait=2
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={node.name} NodeAddr=127.0.0.1 {node.hardware} State=UNKNOWN
{partition_line(node)}
"""


def partition_line(node: NodeSpec) -> str:
    return (
        f"PartitionName={PARTITION} Nodes={node.name} Default=YES MaxTime=INFINITE State=UP "
        f"OverSubscribe=FORCE:{JOBS_PER_CORE}"
    )
