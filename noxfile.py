"""Sessions named for what you want to do. The logic lives in the packages and scripts.

nox -s tests            fast tests (no BOINC client, no frozen build, no MPI)
nox -s integration      slow tests with the real parts: boinc-client, Slurm, frozen worker, MPI
nox -s lint             ruff
nox -s build-workers    freeze the PyBOINC worker into dist/pyboinc/<os>/
nox -s demo -- ARGS     run examples/monte_pi.py ARGS
nox -s bench            benchmarks, each against a named peer measured in the same run
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

BENCHMARKS = (
    "bench_master.py",
    "bench_worker.py",
    "bench_mpi.py",
    "bench_simulator.py",
    "bench_boinc.py",
    "bench_slurm.py",
    "bench_layers.py",
)
EXTRAS_FOR_TESTS = ".[test,build,mpi,boinc,condor]"


def _venv_first_on_path(session: nox.Session) -> dict[str, str]:
    """MPICH started without mpiexec runs the first mpiexec on PATH: make it the venv's."""
    return {"PATH": f"{session.bin}{os.pathsep}{os.environ.get('PATH', '')}"}


@nox.session
def tests(session: nox.Session) -> None:
    """Run the fast test suite."""
    session.install("-e", EXTRAS_FOR_TESTS)
    session.run("pytest", "-m", "not slow", *session.posargs, env=_venv_first_on_path(session))


@nox.session
def integration(session: nox.Session) -> None:
    """Run the slow tests against real components (needs .ci/setup-debian.sh first).

    The slowest are listed at the end: they decide how long CI takes."""
    session.install("-e", EXTRAS_FOR_TESTS)
    session.run(
        "pytest",
        "-m",
        "slow",
        "--durations=15",
        *session.posargs,
        env=_venv_first_on_path(session),
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check style and common bugs with ruff."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="build-workers")
def build_workers(session: nox.Session) -> None:
    """Freeze the PyBOINC worker for this host into dist/pyboinc/ (see docs/pyboinc.md)."""
    session.install("-e", ".[build]")
    session.run("python", "build/build_workers.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Run the Monte Carlo pi example; arguments after -- go to monte_pi.py."""
    session.install("-e", ".")
    session.run("python", "examples/monte_pi.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print ratios against their peers."""
    session.install("-e", ".[build,mpi,test,boinc]")
    session.run("python", "build/build_workers.py")  # bench_worker measures the fresh build
    for script in BENCHMARKS:
        session.run("python", f"benchmarks/{script}", env=_venv_first_on_path(session))
