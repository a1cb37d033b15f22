"""Rich data and exceptions through real workers: numpy arrays, records, a task's own errors.

Generic workers here; MPI ranks in the slow tests. `rich_tasks` is not importable by the
workers, so its classes travel as source, as a user script's would.
"""

from __future__ import annotations

import fractions
import functools
import os
import pathlib
import socket
import sys
import threading

import pytest
import rich_tasks as r

from pyboinc import contract
from pymw import Executor, pymw
from pymw.errors import MalformedResultError, RemoteTraceback, TaskError, UserError
from pymw.interfaces.generic import GenericInterface
from pymw.master import check_codec, remote_exception

numpy = pytest.importorskip("numpy")

MPIEXEC = pathlib.Path(sys.executable).parent / "mpiexec"
TIMEOUT = 120


def _check_rich_round_trips(pool) -> None:
    array = numpy.arange(12.0).reshape(3, 4).T
    doubled = pool.submit(r.scale, array, 2).result(timeout=TIMEOUT)
    assert type(doubled) is numpy.ndarray and doubled.dtype == numpy.float64
    assert numpy.array_equal(doubled, array * 2)
    kelvin = pool.submit(r.to_kelvin, r.celsius_reading()).result(timeout=TIMEOUT)
    assert type(kelvin) is r.Reading and kelvin.unit is r.Unit.KELVIN
    assert type(kelvin.span) is r.Span and kelvin.span.low == pytest.approx(271.65)
    assert kelvin.taken == r.celsius_reading().taken
    with pytest.raises(r.CalibrationError) as raised:
        pool.submit(r.calibrate, "t2", 0.9).result(timeout=TIMEOUT)
    error = raised.value
    assert error.args == ("t2", 0.9) and type(error.drift) is numpy.float64
    assert error.sensor == "t2"  # its own constructor ran, with its own args
    cause = error.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "raise CalibrationError(sensor, numpy.float64(drift))" in cause.traceback_text
    assert str(cause).startswith(f'\n"""\nTraceback from worker {cause.worker} on host ')
    assert cause.host == socket.gethostname() and cause.pid != os.getpid()


def test_arrays_records_and_own_exceptions_round_trip_on_generic_workers():
    with Executor(2) as pool:
        _check_rich_round_trips(pool)


def test_the_pymw_master_face_carries_them_too():
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=False) as master:
        task = master.submit_task(r.to_kelvin, input_data=(r.celsius_reading(),))
        assert master.get_result(task)[1].unit is r.Unit.KELVIN
        failing = master.submit_task(r.calibrate, input_data=("t3", 1.0))
        with pytest.raises(r.CalibrationError, match="t3"):
            master.get_result(failing)


def test_a_result_that_cannot_travel_is_the_tasks_error():
    with Executor(1) as pool:
        future = pool.submit(r.wrap, 5)
        with pytest.raises(TypeError, match=r"cannot carry a Opaque.*codec='pickle'"):
            future.result(timeout=TIMEOUT)


def test_pickle_codec_carries_what_the_safe_codec_cannot():
    with Executor(2, codec="pickle") as pool:
        _check_rich_round_trips(pool)
        wrapped = pool.submit(r.wrap, numpy.array([1, None], dtype=object)).result(TIMEOUT)
        assert type(wrapped) is r.Opaque  # the master's own class, not a copy
        assert wrapped.payload.tolist() == [1, None]
        assert pool.submit(r.apply, lambda x: x * 3, 5).result(timeout=TIMEOUT) == 15


def test_pickle_codec_fails_only_the_task_whose_pickle_fails_as_process_pool_executor():
    with Executor(1, codec="pickle") as pool:
        unsent = pool.submit(r.wrap, threading.Lock())  # submit does not raise: the future fails
        with pytest.raises(TypeError, match=r"cannot pickle '_thread\.lock'"):
            unsent.result(timeout=TIMEOUT)
        with pytest.raises(SystemExit, match="7"):  # raised on the worker as its result pickled
            pool.submit(r.ExitsWhenPickled).result(timeout=TIMEOUT)
        with pytest.raises(MalformedResultError, match="cannot unpickle: SystemExit: 7"):
            pool.submit(r.ExitsWhenUnpickled).result(timeout=TIMEOUT)  # in the master
        # Callables with no code to send travel pickled themselves.
        assert pool.submit(functools.partial(pow, 2), 5).result(timeout=TIMEOUT) == 32
        half = fractions.Fraction(1, 2)
        assert list(pool.map(half.__mul__, [2, 4], chunksize=2)) == [1, 2]


class _UntrustedEngine:
    """Any engine without `trusted_workers = True`, as BOINC, Condor, Slurm, the grid
    simulator: a missing attribute means its workers are not the user's."""


@pytest.mark.parametrize(
    "interface",
    [_UntrustedEngine(), GenericInterface(num_workers=1, fresh_process=True)],
    ids=["no trusted_workers attribute", "generic with fresh processes"],
)
def test_pickle_codec_is_refused_where_workers_are_not_the_users(interface):
    with pytest.raises(UserError, match="codec='pickle' is only for workers that are your own"):
        check_codec("pickle", interface)
    interface_cleanup = getattr(interface, "cleanup", None)
    if interface_cleanup is not None:
        interface_cleanup()


def test_an_unknown_codec_is_refused_in_one_line():
    with pytest.raises(UserError, match="codec must be one of json, pickle, got 'marshal'"):
        Executor(1, codec="marshal")


def _failed(error: BaseException, classes) -> contract.Outcome:
    """The outcome a worker sends for `error`, as the master decodes it."""

    def raise_it():
        raise error

    output = contract.call_task(raise_it, classes=classes).encoded
    return contract.decode_output(output, classes=classes)


@pytest.mark.parametrize(
    "error",
    [
        KeyError(("a", 1)),
        FileNotFoundError(2, "No such file", "data.csv"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        ValueError(numpy.arange(3)),
        StopIteration(5),
    ],
    ids=lambda error: type(error).__name__,
)
def test_builtin_exceptions_come_back_with_their_own_args(error):
    rebuilt = remote_exception(_failed(error, {}))
    assert type(rebuilt) is type(error)
    assert repr(rebuilt.args) == repr(error.args)
    assert str(rebuilt) == str(error)


def test_an_exception_class_outside_the_allow_list_is_a_task_error():
    allowed = {contract.class_key(r.CalibrationError): r.CalibrationError}
    outcome = _failed(r.CalibrationError("t", 1.0), classes={})
    rebuilt = remote_exception(outcome, allowed)
    assert type(rebuilt) is TaskError
    assert rebuilt.remote_type == "rich_tasks.CalibrationError"
    assert type(remote_exception(_failed(r.CalibrationError("t", 1.0), allowed), allowed)) is (
        r.CalibrationError
    )


@pytest.mark.parametrize(
    "type_name",
    ["SystemExit", "KeyboardInterrupt", "eval", "os:system", "rich_tasks:Reading", ""],
)
def test_hostile_error_types_never_become_anything_but_task_errors(type_name):
    """A worker may name any type: only builtin and allow-listed exceptions are rebuilt."""
    allowed = {contract.class_key(r.Reading): r.Reading}
    outcome = contract.Outcome(
        False, error_type=type_name, error_message="boom", traceback="", error_args=("rm -rf",)
    )
    rebuilt = remote_exception(outcome, allowed)
    assert type(rebuilt) is TaskError and str(rebuilt) == f"{type_name}: boom"


def test_error_args_that_cannot_travel_leave_the_message_and_traceback():
    outcome = _failed(ValueError(object()), {})
    assert outcome.error_args is None and "object object at" in outcome.error_message
    rebuilt = remote_exception(outcome)
    assert type(rebuilt) is ValueError and rebuilt.args == (outcome.error_message,)
    assert outcome.traceback.startswith("Traceback (most recent call last):\n  File ")
    assert "in call_task" not in outcome.traceback  # the task's frames, not the contract's


@pytest.mark.slow
@pytest.mark.skipif(not MPIEXEC.exists(), reason="needs `pip install mpich`")
def test_arrays_records_and_own_exceptions_round_trip_on_mpi_ranks(monkeypatch):
    pytest.importorskip("mpi4py")
    from pymw.interfaces.mpi import MPIInterface

    for name in list(os.environ):
        if name.startswith(("PMI_", "PMIX_", "OMPI_")):
            monkeypatch.delenv(name)
    with Executor(interface=MPIInterface(num_workers=2)) as pool:
        _check_rich_round_trips(pool)
    with Executor(interface=MPIInterface(num_workers=1), codec="pickle") as pool:
        wrapped = pool.submit(r.wrap, numpy.array([1, None], dtype=object)).result(TIMEOUT)
        assert type(wrapped) is r.Opaque and wrapped.payload.tolist() == [1, None]
        with pytest.raises(r.CalibrationError):
            pool.submit(r.calibrate, "t2", 0.9).result(timeout=TIMEOUT)


@pytest.mark.slow
def test_arrays_records_and_own_exceptions_round_trip_on_the_frozen_worker(pyboinc_numpy_dist):
    """Through the PyBOINC worker with its numpy layer (`-c`), every task a new process."""
    engine = GenericInterface(
        num_workers=2, custom_app_dir=pyboinc_numpy_dist, custom_args=["1.00_python311.zip"]
    )
    with Executor(interface=engine) as pool:
        _check_rich_round_trips(pool)


class _QuietEngine:
    """An engine that runs nothing, untrusted (no `trusted_workers`)."""

    num_workers = 1

    def idle_workers(self):
        return []

    def execute(self, job, worker):
        raise AssertionError("not used")

    def wait(self, timeout):
        return []

    def wakeup(self):
        pass

    def get_status(self):
        return {}

    def cleanup(self):
        pass


def test_the_master_never_unpickles_an_untrusted_engines_output():
    """Even if its codec were pickle by mistake: the engine's mark decides, not the bytes."""
    from pymw.errors import MalformedResultError
    from pymw.interfaces.base import Completion
    from pymw.master import Master
    from pymw.programs import program_from_function

    master = Master(_QuietEngine())
    master.codec = contract.CODEC_PICKLE
    task = master.submit(program_from_function(r.scale), b"")
    pickled = contract.call_task(len, ((1, 2),), codec=contract.CODEC_PICKLE).encoded
    result, error = master._decode(task, Completion(task.task_id, pickled))
    assert result is None and isinstance(error, MalformedResultError)
    assert "pickled envelope was refused" in str(error)
    master.terminate()
