"""A real one-node Slurm cluster on this host, for tests and for trying `-i slurm`.

It starts Debian's own daemons, nothing standing in for them: `munged` (with its own key
and socket), `slurmctld` and `slurmd` (Slurm 22.05), all on a private directory, with a
`slurm.conf` written for this host's real CPUs and memory (`SelectType=select/cons_tres`,
one partition, `pymw`). Clients reach it through `SLURM_CONF=<dir>/slurm.conf`.

    from pymw.testing.slurm_cluster import SlurmCluster
    cluster = SlurmCluster.open(directory)
    cluster.start()                 # returns when the node is idle; reuses a running one
    os.environ.update(cluster.env)  # SLURM_CONF for sbatch, squeue and PyMW's -i slurm
    cluster.stop()                  # ends the daemons, job steps and jobs it started

or from a shell: `pymw-slurm-cluster start --dir D` (see cli.py). Needs root and the
packages slurmctld, slurmd, slurm-client and munge.
"""

from .cluster import ClusterError, SlurmCluster
from .config import PARTITION

__all__ = ["PARTITION", "ClusterError", "SlurmCluster"]
