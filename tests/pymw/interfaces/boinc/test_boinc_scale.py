"""PyMW batches at volunteer-grid scale: hundreds of workunits, several real hosts (slow).

Every host is a real Debian `boinc-client` with its own data directory, so the sandbox
project sees distinct hosts, sends no two results of one workunit to the same one, and
compares their results. The tasks are tiny and run with the host's python3 (the default
worker): what is measured is BOINC's machinery, not computation. A real client starts
about one task a second whatever its CPU count, so the batches use several hosts, each
asking for many jobs per scheduler request; the sandbox reports lazily like a real
server, and the `volunteer` fixture makes the hosts update every few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from boinc_hosts import add_host, host_id
from boinc_scale_tasks import square_or_lie

from pymw import pymw
from pymw.interfaces.boinc import BOINCInterface
from pymw.testing.boinc_sandbox import Sandbox
from pymw.testing.boinc_sandbox.constants import (
    AssimilateState,
    Outcome,
    ServerState,
    ValidateState,
)
from pymw.testing.boinc_sandbox.processes import wait_until

pytestmark = pytest.mark.slow

HELPERS = Path(__file__).resolve().parents[3] / "helpers"
SCALE_MASTER = HELPERS / "boinc_scale_master.py"

#: Workunits of the replicated batch, and its honest hosts beside the one liar: 600
#: results or more at about one per second per host.
REPLICATED_BATCH = 300
HONEST_HOSTS = 4
#: Jobs per scheduler reply: few enough that no host hoards what others could run now.
MAX_WUS_TO_SEND = 8
#: Workunits of the batch whose master is killed three times.
KILLED_BATCH = 200
KILL_TEST_HOSTS = 3
#: Longest a batch may take once hosts are attached, and a master to collect the
#: outputs once all are assimilated (seconds).
BATCH_TIMEOUT = 360
ASSIMILATED_TO_ANSWER = 30


def query(sandbox: Sandbox, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(sandbox.project.db_path, timeout=60) as db:
        return db.execute(sql, args).fetchall()


def test_a_lying_host_is_outvoted_in_a_replicated_batch(sandbox, volunteer, tmp_path):
    sandbox.project.set_config_value("max_wus_to_send", str(MAX_WUS_TO_SEND))
    liar = add_host(sandbox, "liar", lies=True)
    for i in range(HONEST_HOSTS):
        add_host(sandbox, f"honest{i}")
    interface = BOINCInterface(sandbox.project_dir, task_path=tmp_path / "tasks")
    interface.set_boinc_args(target_nresults=2, min_quorum=2)
    start = time.monotonic()
    with pymw.PyMW_Master(interface, show_progress=False) as master:
        tasks = [
            master.submit_task(square_or_lie, input_data=(i,)) for i in range(REPLICATED_BATCH)
        ]
        results = [master.get_result(task)[1] for task in tasks]
        disagreed = set(master.get_status()["interface"]["disagreed"])
    print(f"{REPLICATED_BATCH} workunits, quorum 2: {time.monotonic() - start:.0f} s")

    assert results == [i * i for i in range(REPLICATED_BATCH)]
    liar_votes = query(
        sandbox,
        "SELECT workunit.name, result.validate_state, workunit.canonical_resultid = result.id"
        " FROM result JOIN workunit ON workunit.id = result.workunitid"
        " WHERE result.hostid = ? AND result.server_state = ? AND result.outcome = ?",
        host_id(liar),
        ServerState.OVER,
        Outcome.SUCCESS,
    )
    assert liar_votes, "the lying host returned no result: the test proved nothing"
    judged = [(name, state) for name, state, _ in liar_votes if state != ValidateState.INIT]
    assert judged and all(state == ValidateState.INVALID for _, state in judged), judged
    assert not any(canonical for *_, canonical in liar_votes)
    # Where the liar's result blocked the quorum, a third host settled it: the master saw
    # those workunits disagree before it got their results.
    outvoted = {
        name
        for (name,) in query(
            sandbox,
            "SELECT workunit.name FROM workunit JOIN result ON result.workunitid = workunit.id"
            " GROUP BY workunit.id HAVING COUNT(result.id) > 2",
        )
    }
    assert outvoted, "no workunit needed a third result: the liar was never compared"
    assert outvoted <= disagreed <= {name for name, *_ in liar_votes}
    honest_invalid = query(
        sandbox,
        "SELECT COUNT(*) FROM result WHERE hostid != ? AND validate_state = ?",
        host_id(liar),
        ValidateState.INVALID,
    )
    assert honest_invalid == [(0,)]


class MasterRun:
    """boinc_scale_master.py in its own session, so that SIGKILL takes it and the BOINC
    tools it runs at once, as when the machine or the user's session dies. Its results
    and answer are read as it prints them."""

    def __init__(self, sandbox: Sandbox, task_dir: Path, count: int) -> None:
        command = [sys.executable, str(SCALE_MASTER), str(sandbox.project_dir), str(task_dir)]
        self.process = subprocess.Popen(
            [*command, str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.got: dict[int, int] = {}
        self.answer: str | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.startswith("answer"):
                self.answer = line.strip()
            elif line.startswith("got"):
                _, task_input, value = line.split()
                self.got[int(task_input)] = int(value)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._reader.join()

    def failure(self) -> str:
        """What a master that ended on its own said on stderr (for assertion messages)."""
        return self.process.stderr.read() if self.process.poll() is not None else "running"


@pytest.fixture
def start_master(sandbox: Sandbox, tmp_path: Path) -> Iterator[Callable[[int], MasterRun]]:
    """Starts boinc_scale_master.py runs on one task directory; none outlives the test."""
    runs: list[MasterRun] = []

    def start(count: int) -> MasterRun:
        runs.append(MasterRun(sandbox, tmp_path / "tasks", count))
        return runs[-1]

    yield start
    for run in runs:
        run.kill()


def checkpoint_created(task_dir: Path) -> int:
    try:
        data = json.loads((task_dir / "checkpoint.json").read_text())
    except (OSError, ValueError):  # not there yet, or being replaced
        return 0
    return len(data["created"]) if not data["intended"] else 0


def workunit_count(sandbox: Sandbox) -> int:
    return query(sandbox, "SELECT COUNT(*) FROM workunit")[0][0]


def assimilated(sandbox: Sandbox) -> int:
    done = AssimilateState.DONE
    return query(sandbox, "SELECT COUNT(*) FROM workunit WHERE assimilate_state = ?", done)[0][0]


def test_a_master_killed_three_times_loses_and_duplicates_nothing(
    sandbox, volunteer, start_master, tmp_path
):
    sandbox.project.set_config_value("max_wus_to_send", str(MAX_WUS_TO_SEND))
    count, task_dir = KILLED_BATCH, tmp_path / "tasks"
    expected = {i: square_or_lie(i) for i in range(count)}  # an uninterrupted run's

    # 1. While its workunits are being created.
    first = start_master(count)
    assert wait_until(lambda: workunit_count(sandbox) >= count // 2, 120, interval=0.01)
    first.kill()
    assert count // 2 <= workunit_count(sandbox) < count, "killed after creation had ended"

    # 2. After creating them all, before any result (no host is attached yet).
    second = start_master(count)
    assert wait_until(lambda: checkpoint_created(task_dir) == count, 240), second.failure()
    second.kill()
    assert workunit_count(sandbox) == count

    # 3. Halfway through collecting the results.
    for i in range(KILL_TEST_HOSTS):
        add_host(sandbox, f"host{i}")
    start = time.monotonic()
    third = start_master(count)
    assert wait_until(lambda: len(third.got) >= count // 2, BATCH_TIMEOUT, 0.5), third.failure()
    third.kill()
    assert count // 2 <= len(third.got) < count, "killed after collection had ended"

    last = start_master(count)
    assert wait_until(lambda: assimilated(sandbox) == count, BATCH_TIMEOUT, 1)
    wait_until(lambda: last.process.poll() is not None, ASSIMILATED_TO_ANSWER, 0.5)
    print(f"{count} workunits, 3 kills: {time.monotonic() - start:.0f} s after hosts came")
    missing = sorted(set(expected) - set(last.got))
    assert not missing, f"the rerun never got {len(missing)} results, e.g. inputs {missing[:5]}"
    assert last.got == expected
    assert last.answer == f"answer {sum(expected.values())}"
    assert last.process.wait() == 0, last.failure()

    names = [name for (name,) in query(sandbox, "SELECT name FROM workunit")]
    assert len(names) == len(set(names)) == count
    assert query(sandbox, "SELECT COUNT(DISTINCT batch) FROM workunit") == [(1,)]
    per_workunit = query(
        sandbox,
        "SELECT COUNT(*) FROM result WHERE outcome = ? GROUP BY workunitid",
        Outcome.SUCCESS,
    )
    assert per_workunit == [(1,)] * count, "a workunit ran more often than it was asked to"
