"""`python -m pyboinc <script> <stdlib zip> <input> <output>`; also the frozen entry script."""

from pyboinc.runtime import entry_point

entry_point()
