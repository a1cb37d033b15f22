"""The volunteer stand-in updates clients, but never faster than the project sends work."""

from __future__ import annotations

import time

from pymw.testing.boinc_sandbox import Volunteer
from pymw.testing.boinc_sandbox.processes import wait_until


def test_updates_come_slower_than_min_sendwork_interval(app_sandbox):
    """Faster updates would each be "too recent" for the scheduler: no work, ever."""
    interval = float(app_sandbox.project.config_value("min_sendwork_interval"))
    assert interval == 6
    assert Volunteer(app_sandbox).interval > interval * 1.01 + 1


def test_it_updates_every_running_client_until_stopped(app_sandbox, monkeypatch):
    calls = []
    monkeypatch.setattr(app_sandbox, "update_clients", lambda: calls.append(1))
    with Volunteer(app_sandbox, interval=0.05):
        assert wait_until(lambda: len(calls) >= 3, 5)
    seen = len(calls)
    time.sleep(0.2)
    assert len(calls) == seen  # stopped
