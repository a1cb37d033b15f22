"""`python -m pyboinc <script> <stdlib zip> <input> <output>`; also the frozen entry script."""

import sys

# `python -m` put the working directory first on sys.path. In a slot that is where the
# task's inputs are, and nothing may be imported from there (docs/signing.md). The frozen
# worker has no such entry, nor has `python -P -m pyboinc` (which is also safe from a slot
# file shadowing the modules `python -m` itself imports before this line runs).
if not getattr(sys, "frozen", False) and not sys.flags.safe_path:
    del sys.path[0]

from pyboinc.runtime import entry_point

entry_point()
