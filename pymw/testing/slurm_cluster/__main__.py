"""`python -m pymw.testing.slurm_cluster` is `pymw-slurm-cluster`."""

import sys

from .cli import main

sys.exit(main())
