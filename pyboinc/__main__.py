"""`python -m pyboinc <script> <stdlib zip> <input> <output>`; also the frozen entry script.

In the frozen worker, a task's child processes start this same program as
`sys.executable`: they act as python (`pyboinc.interpreter`), never as a new task.
"""

import sys

# `python -m` put the working directory first on sys.path. In a slot that is where the
# task's inputs are, and nothing may be imported from there (docs/signing.md). The frozen
# worker has no such entry, nor has `python -P -m pyboinc` (which is also safe from a slot
# file shadowing the modules `python -m` itself imports before this line runs).
if not getattr(sys, "frozen", False) and not sys.flags.safe_path:
    del sys.path[0]

from pyboinc import interpreter

if interpreter.is_child():
    interpreter.child_main()
else:
    from pyboinc.runtime import entry_point

    entry_point()
