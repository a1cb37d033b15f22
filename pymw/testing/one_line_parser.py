"""An argparse parser for the fixture CLIs whose usage errors are one line.

argparse prints the whole usage and exits; the fixtures' commands (`pymw-boinc-sandbox`,
`pymw-slurm-cluster`) raise their own error instead, which their `main()` prints as one
line with exit status 2, like every other mistake.
"""

from __future__ import annotations

import argparse


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args, error_type: type[Exception], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._error_type = error_type

    def error(self, message: str) -> None:  # type: ignore[override]
        raise self._error_type(f"{message} (see {self.prog} --help)")
