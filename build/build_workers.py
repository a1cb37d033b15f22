"""Build the portable PyMW worker into dist/pyboinc/<os>/ (what `nox -s build-workers` runs).

python build/build_workers.py [--portable/--no-portable] [--app-version 1.03]
    [--stdlib-version 1.00] [--onedir] [--out dist/pyboinc] [--signing-public-key PATH]
"""

import sys
from pathlib import Path

# The build code is the package `pyboinc_build` beside this file (not a package named
# `build`, which would shadow PyPA's build).
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pyboinc_build.main import main

if __name__ == "__main__":
    sys.exit(main())
