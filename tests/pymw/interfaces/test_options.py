"""PyMW's command-line switches: parse_options/get_interface, and their one-line errors."""

import optparse
import subprocess
import sys
from pathlib import Path

import pytest
from one_line_errors import assert_one_line_error

from pymw import interfaces
from pymw.interfaces.generic import GenericInterface

ROOT = Path(__file__).resolve().parents[3]
MONTE_PI = ROOT / "examples" / "monte_pi.py"


def run_monte_pi(*args, timeout=120):
    return subprocess.run(
        [sys.executable, str(MONTE_PI), *args], capture_output=True, text=True, timeout=timeout
    )


def test_defaults_give_the_generic_interface_on_all_cores():
    options, rest = interfaces.parse_options(args=["extra"])
    assert options.interface == "generic"
    assert rest == ["extra"]
    interface = interfaces.get_interface(options)
    try:
        assert isinstance(interface, GenericInterface)
        assert interface.num_workers >= 1
    finally:
        interface.cleanup()


def test_an_optparse_parser_from_pymw_0_4_programs_still_works():
    parser = optparse.OptionParser(usage="usage: %prog")
    parser.add_option("-t", "--num_tests", dest="n_tests", default="10")
    options, _ = interfaces.parse_options(parser, ["-n", "3", "-t", "5"])
    assert (options.num_workers, options.n_tests, options.interface) == (3, "5", "generic")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "nonsense"], "unknown interface 'nonsense'"),
        (["-n", "0"], "must be at least 1"),
        (["-n", "many"], "expected a whole number"),
        (["-c", "/no/such/dir", "-a", "1.00_python311.zip"], "does not exist"),
        (["-a", "1.00_python311.zip"], "without -c/--app_path"),
        (["--no-such-switch"], "unrecognized arguments"),
        # Another engine's switch: with it ignored, the batch would run on this machine.
        (["--url", "https://boinc.example.org/p/", "--auth", "k"], "add -i boinc, or drop it"),
        (["-p", "/srv/project"], "-p/--project_home is a switch of the boinc interface"),
        (["-i", "mpi", "-c", "dist/pyboinc"], "of the generic, condor, slurm and boinc"),
        (["--slurm-partition", "short"], "add -i slurm"),
        (["-i", "boinc", "-p", "/srv/project", "--fresh_process"], "not of boinc"),
        # monte_pi's function takes no simulated worker: what the simulator expects instead.
        (["-i", "grid_simulator"], "calls a task function with the simulated worker first"),
    ],
)
def test_bad_options_are_one_line_errors_with_status_2(args, message):
    assert_one_line_error(run_monte_pi(*args), message)


def test_a_switch_of_another_engine_is_refused_before_that_engine_is_imported(monkeypatch, capsys):
    """mpi4py missing or not, -c with -i mpi is the switch's error, not the install hint."""
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    options, _ = interfaces.parse_options(args=["-i", "mpi", "-c", "dist/pyboinc"])
    with pytest.raises(SystemExit) as stopped:
        interfaces.get_interface(options)
    assert stopped.value.code == 2
    assert "-c/--app_path is a switch of" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("engine", "module", "extra"),
    [("mpi", "mpi4py", "pymw[mpi]"), ("condor", "htcondor2", "pymw[condor]")],
)
def test_an_engine_imported_without_its_extra_says_what_to_install(engine, module, extra):
    """`Executor(interface=MPIInterface)` imports the engine itself, past get_interface."""
    code = f"import sys; sys.modules[{module!r}] = None\nimport pymw.interfaces.{engine}\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(f"ModuleNotFoundError: the {engine} interface needs the Python module")
    assert extra in last


def test_every_engine_takes_its_own_switches():
    """Each switch an engine lists is one parse_options defines, so none is refused by
    a typo in the table."""
    options, _ = interfaces.parse_options(args=[])
    for engine in interfaces.ENGINES.values():
        for dest in engine.switches:
            assert hasattr(options, dest), dest


@pytest.mark.parametrize(
    ("example", "args", "message"),
    [
        ("monte_pi.py", ["-t", "0"], "argument -t/--num_tests: must be at least 1, got 0"),
        ("prime_finder.py", ["--tasks", "-2"], "argument --tasks: must be at least 1, got -2"),
        ("null_test.py", ["-t", "-3"], "argument -t/--num_tasks: must be at least 1, got -3"),
    ],
)
def test_the_examples_counts_must_be_at_least_one(example, args, message):
    """Not a run that prints nonsense (prime_finder --tasks -2 found 0 primes)."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / example), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(run, message)


def test_custom_worker_dir_without_a_build_lists_what_was_found(tmp_path):
    (tmp_path / "windows").mkdir()
    run = run_monte_pi("-c", str(tmp_path), "-a", "1.00_python26.zip")
    assert run.returncode == 2
    assert "found: windows" in run.stderr


def test_wrong_zip_name_lists_the_zips_that_exist(tmp_path):
    import json

    os_dir = tmp_path / "linux"
    os_dir.mkdir()
    (os_dir / "pymw_1.03_x86_64-pc-linux-gnu").write_text("")
    (os_dir / "1.00_python311.zip").write_text("")
    manifest = {
        "format": "pymw-worker-manifest/1",
        "os": "linux",
        "platform": "x86_64-pc-linux-gnu",
        "files": [
            {"file": "pymw_1.03_x86_64-pc-linux-gnu", "role": "executable"},
            {"file": "1.00_python311.zip", "role": "stdlib"},
        ],
    }
    (os_dir / "manifest.json").write_text(json.dumps(manifest))
    if sys.platform.startswith("linux"):
        run = run_monte_pi("-c", str(tmp_path), "-a", "1.00_python26.zip")
        assert run.returncode == 2
        assert "'1.00_python26.zip' not found" in run.stderr
        assert "found: 1.00_python311.zip" in run.stderr


def test_monte_pi_prints_pi_within_a_hundredth():
    run = run_monte_pi()
    assert run.returncode == 0, run.stderr
    estimate = float(run.stdout.split("Estimate of pi:")[1].split()[0])
    assert abs(estimate - 3.14159265) < 0.01
    assert "Tasks:" in run.stdout and "Calculation time:" in run.stdout


PYMW_04_PROGRAM = """
from pymw import pymw
from pymw import interfaces
import random
from optparse import OptionParser

def throw_dart():
    x, y = random.random(), random.random()
    return 1 if x * x + y * y <= 1 else 0

def monte_pi(rand_seed, num_tests):
    random.seed(rand_seed)
    num_hits = 0
    for i in range(num_tests):
        num_hits += throw_dart()
    return [num_hits, num_tests]

parser = OptionParser(usage="usage: %prog")
parser.add_option("-t", "--num_tests", dest="n_tests", default="20000")
options, args = interfaces.parse_options(parser)
interface_obj = interfaces.get_interface(options)
pymw_master = pymw.PyMW_Master(interface=interface_obj)
n = int(options.n_tests)
tasks = [pymw_master.submit_task(monte_pi, input_data=(i, n // 4), modules=("random",),
                                 dep_funcs=(throw_dart,)) for i in range(4)]
hits = 0
for task in tasks:
    res_task, res = pymw_master.get_result(task)
    hits += res[0]
print("pi", 4.0 * hits / (n // 4 * 4))
"""


def test_a_pymw_0_4_program_runs_unchanged_but_for_python_3_syntax(tmp_path):
    program = tmp_path / "old_monte_pi.py"
    program.write_text(PYMW_04_PROGRAM)
    run = subprocess.run(
        [sys.executable, str(program), "-n", "2"], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert abs(float(run.stdout.split()[1]) - 3.1416) < 0.05


ENGINE_FAILS_MID_RUN = """
import sys
from pymw import interfaces, pymw
from pymw.errors import UserError
from pymw.interfaces.generic import GenericInterface


class ToolFailsInterface(GenericInterface):
    '''A generic engine whose second look for completions fails as a BOINC tool does.'''

    looks = 0

    def wait(self, timeout):
        self.looks += 1
        if self.looks > 1:
            raise UserError("bin/create_work failed: error opening database; is MySQL up?")
        return super().wait(timeout)


def square(x):
    return x * x


options, _ = interfaces.parse_options()
with pymw.PyMW_Master(ToolFailsInterface(num_workers=1)) as master:
    task = master.submit_task(square, input_data=(3,))
    master.get_result(task)
print("not reached")
"""


def test_an_engine_user_error_mid_run_ends_the_program_with_one_line_and_status_2(tmp_path):
    program = tmp_path / "program.py"
    program.write_text(ENGINE_FAILS_MID_RUN)
    run = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines == [
        "program.py: error: bin/create_work failed: error opening database; is MySQL up?"
    ]
    assert "not reached" not in run.stdout


# A program on pymw.Executor that sends a function by reference (a builtin here).
EXECUTOR_ONLY = """
import sys
import pymw

with pymw.Executor(1) as pool:
    assert pool.submit(abs, -3).result() == 3
print(sorted({"argparse", "optparse", "symtable", "pymw.pymw"} & set(sys.modules)))
from pymw import interfaces

assert callable(interfaces.parse_options) and issubclass(interfaces.ArgumentParser, object)
assert pymw.pymw.PyMW_Master is pymw.PyMW_Master
"""


def test_a_program_on_the_executor_loads_no_option_parser_and_not_the_0_4_face():
    # Start-up and memory: the switches (argparse, optparse), PyMW 0.4's face and the
    # by-source shipping (symtable) load on first use, and still work when asked for.
    run = subprocess.run(
        [sys.executable, "-c", EXECUTOR_ONLY], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
