"""A stand-in for volunteers who look at their BOINC Manager: clients are told to update.

Real clients report finished tasks and ask for work on their own schedule: a task is
reported on a later scheduler RPC (the server asks for no early report), and an idle
client waits 10 minutes to 24 hours before it asks again. A test cannot wait that
long, so a `Volunteer` calls `Sandbox.update_clients()` (boinccmd ... update) on every
running client every few seconds, from a background thread, until it is stopped. It
waits longer than the project's min_sendwork_interval between updates: the scheduler
sends no work to a host that asks again sooner, so faster updates would starve the
clients they mean to feed.

    with Volunteer(sandbox):
        ...  # run a batch; clients report and fetch within seconds
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .sandbox import Sandbox

#: Seconds between updates beyond the project's min_sendwork_interval (the scheduler's
#: "too recent" test, which the real one makes 1% stricter).
UPDATE_MARGIN_SECONDS = 2.0


class Volunteer:
    """Calls `sandbox.update_clients()` every `interval` seconds while started
    (by default min_sendwork_interval plus a margin: 8 s for a new project)."""

    def __init__(self, sandbox: Sandbox, interval: float | None = None) -> None:
        self.sandbox = sandbox
        least = float(sandbox.project.config_value("min_sendwork_interval", "0"))
        self.interval = least + UPDATE_MARGIN_SECONDS if interval is None else interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="volunteer", daemon=True)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.sandbox.update_clients()
            except (OSError, subprocess.SubprocessError) as error:
                # A client between states (stopping, busy): the next round asks again.
                # A volunteer that died here would leave the batch hanging silently.
                print(f"volunteer: update failed, retrying: {error}", file=sys.stderr)

    def start(self) -> Volunteer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def __enter__(self) -> Volunteer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
