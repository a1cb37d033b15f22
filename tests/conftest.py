"""Shared fixtures. Task functions used by tests live in `tasks_for_tests.py`, a real file,
because PyMW sends functions as source code."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
