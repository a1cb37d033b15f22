"""CPython 3.11's own `concurrent.futures` tests, run against `pymw.Executor` (issue 11).

The suite is the file Debian ships in libpython3.11-testsuite, used as it ships. Each
engine gets one small adapter, `GenericEngine`, `MPIEngine` and `GenericPickleEngine`
(codec="pickle"): the suite's executor mixin with `executor_type` making a
`pymw.Executor`. Every test the suite runs against ProcessPoolExecutor runs against the
first two, except those in `SKIPS` and `ENGINE_SKIPS`, each with its reason, and the
`PICKLE_ONLY` ones, which need pickles and run on the pickle engine instead (it runs the
two test classes that hold them, ProcessPoolExecutorTest and ExecutorDeadlockTest).
(The suite's FutureTests, which test the Future class and no executor, are left out.)

Skips per engine (the suite's own Windows-only test aside): generic 15 in SKIPS + 12
PICKLE_ONLY; MPI 1 more; the pickle engine the SKIPS of its two classes, and 4 of its own.

The suite's task functions (`mul`, `init`, `get_init_status`, ...) are imported by the
workers, as ProcessPoolExecutor's are: the file is loaded under a top-level name, from a
folder that goes on the workers' PYTHONPATH, so pymw sends them by reference.
"""

import atexit
import functools
import importlib.util
import multiprocessing
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path

import pytest

import pymw
from pymw.interfaces.generic import GenericInterface

SUITE_FILE = Path("/usr/lib/python3.11/test/test_concurrent_futures.py")
SUITE_MODULE = "cpython_test_concurrent_futures"

pytestmark = pytest.mark.slow

_INTERNALS = "peeks at ProcessPoolExecutor internals ({})"
_CHILD_SCRIPT = (
    "its child script imports the executor from concurrent.futures by name "
    "(tests/pymw/test_executor.py checks the same for pymw)"
)
SKIPS = {
    "test_processes_terminate": _INTERNALS.format("_processes"),
    "test_context_manager_shutdown": _INTERNALS.format("_processes"),
    "test_del_shutdown": _INTERNALS.format("_processes, _call_queue"),
    "test_shutdown_no_wait": _INTERNALS.format("_processes, _call_queue"),
    "test_killed_child": _INTERNALS.format("_processes"),
    "test_saturation": _INTERNALS.format("_processes"),
    "test_idle_process_reuse_one": _INTERNALS.format("_processes"),
    "test_idle_process_reuse_multiple": _INTERNALS.format("_processes"),
    "test_max_tasks_per_child": _INTERNALS.format("_processes"),
    "test_max_tasks_per_child_defaults_to_spawn_context": _INTERNALS.format("_mp_context"),
    "test_traceback": _INTERNALS.format("_RemoteTraceback.tb"),
    "test_shutdown_deadlock_pickle": _INTERNALS.format("_executor_manager_thread"),
    "test_interpreter_shutdown": _CHILD_SCRIPT,
    "test_submit_after_interpreter_shutdown": _CHILD_SCRIPT,
    "test_hang_gh83386": _CHILD_SCRIPT,
}

# Tests of objects only pickles carry (the suite's own classes; objects that fail to
# pickle or unpickle): they run on the pickle-codec engine, the others skip them.
PICKLE_ONLY = (
    "test_no_stale_references",
    "test_free_reference",
    "test_ressources_gced_in_workers",
    "test_error_at_task_pickle",
    "test_exit_at_task_unpickle",
    "test_error_at_task_unpickle",
    "test_crash_at_task_unpickle",
    "test_crash_during_result_pickle_on_worker",
    "test_exit_during_result_pickle_on_worker",
    "test_error_during_result_pickle_on_worker",
    "test_error_during_result_unpickle_in_result_handler",
    "test_exit_during_result_unpickle_in_result_handler",
)
_ON_THE_PICKLE_ENGINE = "runs on the pickle engine: the safe codec carries no pickles"
_ONE_TASK_FAILS = (
    "pymw fails only the task whose pickle does not load, with that error; "
    "ProcessPoolExecutor's pool breaks (BrokenProcessPool)"
)
# The engine cannot do what the test asks, or does otherwise by design.
ENGINE_SKIPS = {
    "GenericPickleEngine": {
        "test_ressources_gced_in_workers": "a multiprocessing Manager's objects need the "
        "authkey that only multiprocessing's own children inherit",
        "test_error_at_task_unpickle": _ONE_TASK_FAILS,
        "test_error_during_result_unpickle_in_result_handler": _ONE_TASK_FAILS,
        "test_exit_during_result_unpickle_in_result_handler": _ONE_TASK_FAILS,
    },
    "MPIEngine": {
        "test_max_tasks_early_shutdown": "MPI ranks live as long as their MPI job: no "
        "max_tasks_per_child (the generic interface has it)",
    },
}


def _load_suite():
    """The suite module, importable by name by workers that have `folder` on their path."""
    if not SUITE_FILE.exists():
        pytest.skip(
            f"needs {SUITE_FILE} (Debian: libpython3.11-testsuite)", allow_module_level=True
        )
    folder = Path(tempfile.mkdtemp(prefix="pymw-cpython-suite-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / f"{SUITE_MODULE}.py").symlink_to(SUITE_FILE)
    spec = importlib.util.spec_from_file_location(SUITE_MODULE, folder / f"{SUITE_MODULE}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[SUITE_MODULE] = module
    spec.loader.exec_module(module)
    return module, folder


suite, SUITE_FOLDER = _load_suite()


@pytest.fixture(autouse=True)
def workers_import_the_suite(monkeypatch):
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(SUITE_FOLDER), path])))


class _SuiteExecutor(pymw.Executor):
    """pymw.Executor, with the one attribute the failing-initializer test polls."""

    @property
    def _broken(self):
        return self._master._broken


def _executor(interface_class, max_workers=None, *, mp_context=None, **options):
    # mp_context picks ProcessPoolExecutor's start method; pymw's engines start their
    # workers themselves, as fresh interpreters (what "spawn" does).
    return _SuiteExecutor(max_workers, interface=interface_class, **options)


MIXINS = (
    suite.ProcessPoolShutdownTest,
    suite.WaitTests,
    suite.AsCompletedTests,
    suite.ProcessPoolExecutorTest,
    suite.InitializerMixin,
    suite.FailingInitializerMixin,
    suite.ExecutorDeadlockTest,
)


class _PymwEngine(suite.ExecutorMixin):
    codec = "json"
    mixins = MIXINS

    def get_context(self):
        return multiprocessing.get_context("spawn")


class GenericEngine(_PymwEngine):
    executor_type = staticmethod(functools.partial(_executor, GenericInterface))


class GenericPickleEngine(_PymwEngine):
    """codec="pickle", on the suite's classes that hold the tests the others skip (the
    pickle codec is the same on MPI: one engine keeps the run short)."""

    codec = "pickle"
    mixins = (suite.ProcessPoolExecutorTest, suite.ExecutorDeadlockTest)
    executor_type = staticmethod(functools.partial(_executor, GenericInterface, codec=codec))


class MPIEngine(_PymwEngine):
    @staticmethod
    def executor_type(max_workers=None, **options):
        from pymw.interfaces.mpi import MPIInterface

        return _executor(MPIInterface, max_workers, **options)


def _adapted(mixin, engine):
    skips = {**SKIPS, **ENGINE_SKIPS.get(engine.__name__, {})}
    if engine.codec != "pickle":
        skips.update(dict.fromkeys(PICKLE_ONLY, _ON_THE_PICKLE_ENGINE))
    overrides = {}
    for name in dir(mixin):
        test = getattr(mixin, name)
        if name in skips:
            overrides[name] = unittest.skip(skips[name])(test)
    name = f"{engine.__name__}{mixin.__name__.removesuffix('Mixin')}"
    return type(name, (mixin, engine, suite.BaseTestCase), overrides)


for _engine in (GenericEngine, GenericPickleEngine, MPIEngine):
    for _mixin in _engine.mixins:
        _test_case = _adapted(_mixin, _engine)
        globals()[_test_case.__name__] = _test_case
del _engine, _mixin, _test_case  # or pytest collects the last class twice
