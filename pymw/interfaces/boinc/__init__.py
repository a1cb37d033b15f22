"""The BOINC interface: PyMW tasks as workunits of the `pymw` app on a BOINC project.

    python examples/monte_pi.py -i boinc -p <project_home> -c dist/pyboinc -a 1.00_python311.zip

How a task travels::

    submit_task ─▶ Job ─▶ execute(): buffered ─▶ wait(): staged files + one
    `bin/create_work --stdin` per dispatch round ─▶ workunit pymw_<batch>_<key>
       ─▶ volunteer's client runs pymw_1.03_<platform> (or python3) through the worker
          contract ─▶ upload ─▶ script_validator ─▶ bin/pymw_validator (safe decode,
          compare) ─▶ script_assimilator ─▶ bin/pymw_assimilator
       ─▶ <task dir>/<wu>.out (atomic rename) ─▶ wait() sees it ─▶ master decodes it
          with the safe codec (never unpickled) ─▶ future / get_result

Setup runs on every start and is idempotent: daemons in config.xml, the app in
project.xml (bin/xadd), the assimilator and validator scripts in bin/, app versions under
apps/pymw/<version>/<platform>/ (bin/update_versions --noconfirm signs them with keys/),
and a daemon restart only when their config changed. A checkpoint in the task directory
records the batch and its workunits, and workunit names come from task content, so an
interrupted master run again creates no duplicates and collects every result once. Each
batch claims its number in the project's batch registry (registry.py), which also tells
the server-side scripts where its task directory is and how to compare its results;
files its workunits share are counted per batch and deleted by PyMW (shared_files.py).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...errors import UserError
from ..base import Completion, Job
from ..task_keys import TaskKeys
from ..waiting import Poller
from . import registry
from .app_versions import default_worker_versions, frozen_worker_versions, install
from .constants import (
    APP_NAME,
    CHECKPOINT_FILE,
    DEFAULT_MAX_NBYTES,
    DEFAULT_MIN_QUORUM,
    DEFAULT_TARGET_NRESULTS,
    OBSOLETE_DAEMONS,
    POLL_INTERVAL_MAX,
    POLL_INTERVAL_MIN,
    PUBLIC_FILE_MODE,
    REQUIRED_DAEMONS,
    WU_ERROR_BITS,
)
from .project import BoincProject, BoincToolError, write_if_changed
from .server_scripts import install_server_scripts
from .shared_files import SharedFiles
from .workunits import BoincArgs, WorkunitFactory, default_templates

if TYPE_CHECKING:
    from .remote import BOINCRemoteInterface

logger = logging.getLogger("pymw.boinc")

# Workunits a master keeps created but not yet finished; past it, tasks wait in its queue.
MAX_OUTSTANDING_WORKUNITS = 100_000


@dataclass
class Checkpoint:
    """What a rerun of the same master must know: its batch and the workunits it made.

    `intended` names were being created when the master stopped: a rerun creates them
    again one by one and takes "already exists" as done.
    """

    path: Path
    batch: int
    created: set[str] = field(default_factory=set)
    intended: set[str] = field(default_factory=set)

    @classmethod
    def load_or_start(cls, task_dir: Path, project: BoincProject) -> Checkpoint:
        """The task directory's batch, or a new one claimed in the project's registry."""
        path = task_dir / CHECKPOINT_FILE
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return cls(
                    path, int(data["batch"]), set(data["created"]), set(data.get("intended", []))
                )
            except (ValueError, KeyError, TypeError) as error:
                raise UserError(
                    f"{path} is damaged ({error}); remove it to start a new batch"
                ) from None
        checkpoint = cls(path, registry.claim_batch(str(project.root), int(time.time())))
        checkpoint.save()  # a master killed from here on reruns this batch
        return checkpoint

    def save(self) -> None:
        data = {
            "batch": self.batch,
            "created": sorted(self.created),
            "intended": sorted(self.intended),
        }
        write_if_changed(self.path, json.dumps(data, indent=1))


@dataclass(frozen=True)
class _Pending:
    task_id: int
    keep_files: bool


@dataclass(frozen=True)
class ComparePolicy:
    """How bin/pymw_validator compares a batch's results (set_boinc_args' validator)."""

    validator: str = registry.COMPARE_EXACT
    rtol: float = 0.0
    atol: float = 0.0

    @classmethod
    def of(cls, validator: str, rtol: float | None, atol: float | None) -> ComparePolicy:
        if validator not in (registry.COMPARE_EXACT, registry.COMPARE_FUZZY):
            raise UserError(
                f"set_boinc_args: validator must be 'exact' or 'fuzzy', got {validator!r}"
            )
        if validator == registry.COMPARE_EXACT and (rtol is not None or atol is not None):
            raise UserError("set_boinc_args: rtol and atol need validator='fuzzy'")
        rtol = 1e-9 if rtol is None else rtol  # math.isclose's default
        atol = 0.0 if atol is None else atol
        if not (rtol >= 0 and atol >= 0):
            raise UserError(f"set_boinc_args: rtol and atol must be >= 0, got {rtol}, {atol}")
        return cls(validator, float(rtol), float(atol))


class BOINCInterface:
    """Run PyMW tasks as workunits on a BOINC project this machine administers."""

    def __init__(
        self,
        project_home: str | os.PathLike | None,
        custom_app_dir: str | os.PathLike | None = None,
        custom_args: tuple[str, ...] | list[str] | str = (),
        task_path: str | os.PathLike = "tasks",
        *,
        num_workers: int = 1,
    ) -> None:
        self.project = BoincProject.open(project_home)
        args = shlex.split(custom_args) if isinstance(custom_args, str) else list(custom_args)
        if custom_app_dir is not None:
            if not args:
                raise UserError(
                    "the PyBOINC worker needs its stdlib zip: add -a 1.00_python311.zip"
                )
            versions = frozen_worker_versions(custom_app_dir, args[0])
            self.stdlib_zip: str | None = versions[0].stdlib_zip  # with its layers
        else:
            versions = default_worker_versions()
            self.stdlib_zip = None
        self._num_workers = num_workers
        self.task_dir = Path(task_path).resolve()
        self.task_dir.mkdir(parents=True, exist_ok=True)
        self.setup_changes = self._set_up(versions)
        self.checkpoint = Checkpoint.load_or_start(self.task_dir, self.project)
        self.boinc_args = BoincArgs()
        self.compare_policy = ComparePolicy()
        self._register_batch()
        self._factory: WorkunitFactory | None = None
        self._keys = TaskKeys(f"pymw_{self.checkpoint.batch}")
        self._buffer: list[tuple[str, str]] = []
        self._reattached = False  # whether a task's workunit came from an earlier run
        self._pending: dict[str, _Pending] = {}
        self._counts = {"done": 0, "error": 0}
        self._delivered: list[Path] = []  # outputs read, removed once the batch is complete
        self._poller = Poller(POLL_INTERVAL_MIN, POLL_INTERVAL_MAX)

    @classmethod
    def from_options(cls, options: Any) -> BOINCInterface | BOINCRemoteInterface:
        """`-p <project>` on the server's machine, or `--url` (remote job submission)."""
        if getattr(options, "url", None):
            from .remote import BOINCRemoteInterface

            return BOINCRemoteInterface.from_options(options)
        app_args = getattr(options, "app_args", "") or ""
        interface = cls(
            getattr(options, "project_home", None),
            getattr(options, "app_path", None),
            app_args,
            num_workers=getattr(options, "num_workers", 1) or 1,
        )
        quorum = getattr(options, "quorum", None)
        if quorum:  # -q N: N results per task, a majority must agree (BOINC's check_set)
            interface.set_boinc_args(target_nresults=quorum, min_quorum=quorum)
        return interface

    def set_boinc_args(
        self,
        target_nresults: int = DEFAULT_TARGET_NRESULTS,
        min_quorum: int = DEFAULT_MIN_QUORUM,
        max_nbytes: int = DEFAULT_MAX_NBYTES,
        *,
        validator: str = registry.COMPARE_EXACT,
        rtol: float | None = None,
        atol: float | None = None,
        **more: Any,
    ) -> None:
        """Replication, quorum and output size of the workunits created from now on, and
        how their results are compared (for the whole batch: the last call wins).

        PyMW 0.4's defaults (2 results, quorum 1) run every task twice and check neither
        copy; min_quorum >= 2 makes the validator compare results (docs/boinc.md).
        """
        if min_quorum < 1 or target_nresults < min_quorum or max_nbytes < 1:
            raise UserError(
                "set_boinc_args needs 1 <= min_quorum <= target_nresults and max_nbytes >= 1"
            )
        policy = ComparePolicy.of(validator, rtol, atol)
        try:
            self.boinc_args = replace(
                self.boinc_args,
                target_nresults=target_nresults,
                min_quorum=min_quorum,
                max_nbytes=max_nbytes,
                **more,
            )
        except TypeError:
            raise UserError(
                f"set_boinc_args: unknown setting among {sorted(more)}; known: "
                f"{', '.join(BoincArgs.__dataclass_fields__)}, validator, rtol, atol"
            ) from None
        self.compare_policy = policy
        self._factory = None
        self._register_batch()

    # ------------------------------------------------------------------- setup

    def _set_up(self, versions) -> list[str]:
        """Make the project ready for the pymw app; returns what changed (empty: nothing)."""
        project, changes = self.project, []
        changes += install_server_scripts(project.root)
        for relative, text in default_templates().items():
            if write_if_changed(project.root / relative, text, mode=PUBLIC_FILE_MODE):
                changes.append(f"wrote {relative}")
        if project.ensure_app():
            changes.append("added the pymw app (bin/xadd)")
        added = install(versions, project.root)
        if added:
            project.run_tool("update_versions", "--noconfirm")
            changes += [f"app version {v.version} {v.platform}" for v in added]
        changes += project.ensure_daemons(REQUIRED_DAEMONS, OBSOLETE_DAEMONS)
        for change in changes:
            logger.info("BOINC setup: %s", change)
        return changes

    def _register_batch(self) -> None:
        """Tell the server-side scripts where the batch's task directory is and how to
        compare its results (registry.py)."""
        entry = {
            "task_dir": str(self.task_dir),
            "compare": self.compare_policy.validator,
            "rtol": self.compare_policy.rtol,
            "atol": self.compare_policy.atol,
            "max_nbytes": self.boinc_args.max_nbytes,
        }
        path = Path(registry.entry_path(str(self.project.root), self.checkpoint.batch))
        write_if_changed(path, json.dumps(entry), mode=PUBLIC_FILE_MODE)

    # ------------------------------------------------------------- the protocol

    @property
    def num_workers(self) -> int:
        return self._num_workers

    def idle_workers(self) -> list[str]:
        room = MAX_OUTSTANDING_WORKUNITS - len(self._pending) - len(self._buffer)
        return ["boinc"] * max(0, room)

    def execute(self, job: Job, worker: Any) -> None:
        factory = self._workunit_factory()
        wu_name = self._keys.name_for(job)
        self._pending[wu_name] = _Pending(job.task_id, job.keep_files)
        if wu_name in self.checkpoint.created:  # made by an earlier run: await its result
            if not self._reattached:
                self._reattached = True
                logger.info(
                    "reattaching to the workunits an earlier run made in batch %d: their "
                    "results are awaited, not asked for again",
                    self.checkpoint.batch,
                )
            return
        line = factory.line_for(
            wu_name, job.program.script, job.program.digest, job.input_bytes, job.data_zip
        )
        self._buffer.append((wu_name, line))

    def wait(self, timeout: float | None) -> list[Completion]:
        self._create_buffered_work()
        return self._poller.wait(self._collect, timeout)

    def wakeup(self) -> None:
        self._poller.wakeup()

    def get_status(self) -> dict[str, Any]:
        notes = self._validation_notes()
        return {
            "name": "boinc",
            "project": str(self.project.root),
            "batch": self.checkpoint.batch,
            "workunits": {
                "not_created": len(self._buffer),
                "unsent_or_in_progress": len(self._pending),
                "done": self._counts["done"],
                "error": self._counts["error"],
            },
            # Workunits whose results the validator found different, or rejected as not
            # PyMW outputs at all (undecodable, oversized): a host lied or broke.
            "disagreed": sorted(notes.get("disagreed", ())),
            "rejected": sorted(notes.get("rejected", ())),
        }

    def cleanup(self) -> None:
        """Remove the batch's files once every workunit was collected; else keep them.

        An interrupted master keeps its checkpoint and delivered outputs for the rerun.
        BOINC's file_deleter removes each workunit's own files once it is assimilated;
        the shared ones (<no_delete/>) are deleted here once no other batch refers to them.
        """
        if self._pending or self._buffer:
            logger.info(
                "leaving %d unfinished workunits in batch %d for a rerun",
                len(self._pending) + len(self._buffer),
                self.checkpoint.batch,
            )
            return
        SharedFiles(self.project, self.checkpoint.batch).release()
        for path in self._delivered:
            path.unlink(missing_ok=True)
        (self.task_dir / registry.VALIDATION_LOG).unlink(missing_ok=True)
        self.checkpoint.path.unlink(missing_ok=True)
        Path(registry.entry_path(str(self.project.root), self.checkpoint.batch)).unlink(
            missing_ok=True
        )

    # --------------------------------------------------------------- internals

    def _workunit_factory(self) -> WorkunitFactory:
        if self._factory is None:
            self._factory = WorkunitFactory(
                self.project, self.checkpoint.batch, self.boinc_args, self.stdlib_zip
            )
        return self._factory

    def _create_buffered_work(self) -> None:
        if not self._buffer:
            return
        retry = [item for item in self._buffer if item[0] in self.checkpoint.intended]
        fresh = [item for item in self._buffer if item[0] not in self.checkpoint.intended]
        self.checkpoint.intended.update(name for name, _ in fresh)
        self.checkpoint.save()
        batch_args = ("--appname", APP_NAME, "--batch", str(self.checkpoint.batch))
        if fresh:
            self.project.run_tool(
                "create_work",
                *batch_args,
                "--stdin",
                stdin="".join(line + "\n" for _, line in fresh),
            )
        for _name, line in retry:
            try:
                self.project.run_tool("create_work", *batch_args, *shlex.split(line))
            except BoincToolError as error:
                if "exist" not in str(error) and "uplicate" not in str(error):
                    raise
        for name, _ in self._buffer:
            self.checkpoint.intended.discard(name)
            self.checkpoint.created.add(name)
        self.checkpoint.save()
        logger.info("created %d workunits in batch %d", len(self._buffer), self.checkpoint.batch)
        self._buffer.clear()

    def _collect(self) -> list[Completion]:
        if not self._pending:
            return []
        completions = []
        disagreed: set[str] | None = None  # read once per look, and only if a task failed
        for entry in os.scandir(self.task_dir):
            stem, suffix = os.path.splitext(entry.name)
            pending = self._pending.get(stem)
            if pending is None or suffix not in (
                registry.OUTPUT_SUFFIX,
                registry.ERROR_SUFFIX,
            ):
                continue
            del self._pending[stem]
            if suffix == registry.ERROR_SUFFIX and disagreed is None:
                disagreed = self._validation_notes().get("disagreed", set())
            completions.append(self._completion(stem, Path(entry.path), pending, disagreed))
        return completions

    def _completion(
        self, wu_name: str, path: Path, pending: _Pending, disagreed: set[str] | None
    ) -> Completion:
        data = _read_limited(path, self.boinc_args.max_nbytes)
        if not pending.keep_files:
            # Deleted in cleanup() once the batch is complete, not now: a master killed
            # after reading it reruns on the same workunit, and BOINC delivers only once.
            self._delivered.append(path)
        if path.suffix == registry.OUTPUT_SUFFIX:
            self._counts["done"] += 1
            if data is None:
                return Completion(
                    pending.task_id,
                    None,
                    detail=f"workunit {wu_name}: output "
                    f"over max_nbytes {self.boinc_args.max_nbytes}",
                )
            return Completion(pending.task_id, data)
        self._counts["error"] += 1
        detail = _describe_error(wu_name, data, wu_name in (disagreed or ()))
        return Completion(pending.task_id, None, detail=detail)

    def _validation_notes(self) -> dict[str, set[str]]:
        """This batch's workunits in the validator's log, by kind (validator.py)."""
        notes: dict[str, set[str]] = {}
        prefix = f"pymw_{self.checkpoint.batch}_"
        try:
            lines = (self.task_dir / registry.VALIDATION_LOG).read_text().splitlines()
        except FileNotFoundError:
            return notes
        for line in lines:
            kind, _, rest = line.partition(" ")
            wu_name = rest.partition(" ")[0]
            if wu_name.startswith(prefix):
                notes.setdefault(kind, set()).add(wu_name)
        return notes


def _read_limited(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None if it is larger than `limit` (a hostile upload)."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _describe_error(wu_name: str, record: bytes | None, disagreed: bool = False) -> str:
    try:
        mask = int(json.loads(record or b"{}").get("error_mask", 0))
    except (ValueError, AttributeError):
        mask = 0
    reasons = [text for bit, text in WU_ERROR_BITS.items() if mask & bit] or ["unknown"]
    where = (
        "its results disagreed (see get_status()['interface']['disagreed'] and the "
        "validator's log in the project's log_<host>/)"
        if disagreed
        else "the client's stderr is in the project's result records"
    )
    return f"BOINC workunit {wu_name} failed (error mask {mask}: {', '.join(reasons)}); {where}"
