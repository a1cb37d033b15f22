"""How a user mistake must end a PyMW program: one line on stderr, and exit status 2."""

from __future__ import annotations

import subprocess


def assert_one_line_error(run: subprocess.CompletedProcess, *parts: str) -> str:
    """That `run` ended with exit status 2 and one stderr line holding each of `parts`
    (no traceback, no usage text); returns the line."""
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]
