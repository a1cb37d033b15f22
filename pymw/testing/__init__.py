"""Test infrastructure for PyMW.

Fixtures for the systems the tests run against:

- `boinc_sandbox`: a loopback BOINC project, the stand-in for a BOINC server (which Debian
  does not package), attached by the real `boinc-client`;
- `slurm_cluster`: a real one-node Slurm cluster (Debian's munged, slurmctld, slurmd) on a
  private state directory; no stand-in.

Production code never imports this package; tests and users' own checks do.
"""
