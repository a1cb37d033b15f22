#!/usr/bin/env bash
# Install what PyMW's build and tests need on Debian bookworm (run as root, or with sudo).
# The real BOINC client and app library come from Debian; nox creates the Python venvs.
set -euo pipefail

APT_PACKAGES=(
  boinc-client       # the real BOINC client the sandbox tests attach
  libboinc-app-dev   # the BOINC app API the `boinc` module binds (libboinc_api.so)
  libsodium-dev      # the worker checks signed scripts with libsodium's Ed25519 (cffi)
  g++                # compiles the cffi binding (C++: libboinc is C++)
  patchelf binutils  # --portable worker builds: the launcher (gcc -static, from g++ above)
  debootstrap        # the glibc 2.31 (bullseye) chroot test of the portable worker
  libpython3.11-testsuite  # CPython's test_concurrent_futures, run against pymw.Executor
  slurmctld slurmd   # the one-node Slurm cluster the -i slurm tests run on (22.05)
  slurm-client munge # sbatch, squeue, scancel, scontrol; munged authenticates them
)

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# The Debian package starts a system-wide client; PyMW's tests run their own private ones.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet boinc-client 2>/dev/null; then
  as_root systemctl stop boinc-client || true
fi
# Debian's slurmctld/slurmd services need an /etc/slurm/slurm.conf, which this script does
# not write: the tests start a private cluster (pymw/testing/slurm_cluster) on free ports.
python3 -m pip install --quiet --upgrade "nox>=2024.4"
