"""`python -m pyboinc <script> <stdlib zip> <input> <output>`; also the frozen entry script.

In the frozen worker, a task's child processes start this same program as
`sys.executable`: they act as python (`pyboinc.interpreter`), never as a new task.
"""

from pyboinc import interpreter

if interpreter.is_child():
    interpreter.child_main()
else:
    from pyboinc.runtime import entry_point

    entry_point()
