"""examples/worker_sim.py as a user runs it: the table, FTA traces, and --plot."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from one_line_errors import assert_one_line_error

from pymw.interfaces.grid_simulator import write_fta_trace

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "worker_sim.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120
    )


def _without_timing(table: str) -> list[str]:
    return [line.rsplit("|", 2)[0] for line in table.splitlines()]


def test_the_same_seed_prints_the_same_table_but_for_the_timing_column():
    first, second = (_run("--workers", "40", "--tasks", "800", "--seed", "3") for _ in "12")
    assert first.returncode == 0, first.stderr
    assert "| 2 replicas, first wins |" in first.stdout
    assert _without_timing(first.stdout) == _without_timing(second.stdout)
    assert _without_timing(first.stdout) != _without_timing(
        _run("--workers", "40", "--tasks", "800", "--seed", "4").stdout
    )


def test_hosts_come_from_an_fta_trace(tmp_path):
    trace = tmp_path / "event_trace.tab"
    write_fta_trace(trace, 30, duration=4 * 86_400, mean_on=7200, mean_off=3600, seed=2)
    run = _run("--trace", str(trace), "--tasks", "500", "--replicas", "2")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("500 tasks on 30 simulated workers")
    assert "first come" not in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "/no/such/event_trace.tab"], "cannot read FTA trace /no/such/event_trace.tab"),
        (["--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["--tasks", "-5"], "argument --tasks: must be at least 1, got -5"),
    ],
)
def test_bad_input_is_one_line_with_status_2(args, message):
    run = _run(*args)
    assert_one_line_error(run, message)
    assert run.stdout == ""


def test_a_file_that_is_no_trace_is_one_line_with_status_2(tmp_path):
    trace = tmp_path / "event_trace.tab"
    trace.write_text("not a trace\n")
    line = assert_one_line_error(_run("--trace", str(trace), "--tasks", "10"))
    assert line == (
        f"worker_sim.py: error: {trace} is not an FTA event trace: no event_start_time, "
        "event_stop_time, node_id"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed"
)
def test_plot_without_matplotlib_is_a_one_line_hint(tmp_path):
    run = _run("--tasks", "10", "--plot", str(tmp_path / "curve.png"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "worker_sim.py: --plot needs matplotlib: pip install 'pymw[plot]'"
    ]
    assert not (tmp_path / "curve.png").exists()


def test_plot_draws_the_completion_curves(tmp_path):
    pytest.importorskip("matplotlib")
    run = _run("--workers", "20", "--tasks", "200", "--plot", str(tmp_path / "curve.png"))
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
