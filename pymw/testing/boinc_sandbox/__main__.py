"""`python -m pymw.testing.boinc_sandbox` is `pymw-boinc-sandbox`."""

import sys

from .cli import main

sys.exit(main())
