"""Task functions whose arguments and results are rich data: numpy arrays, records, errors.

Not importable by workers (tests/helpers is not on their PYTHONPATH), so the classes
travel as source with the functions that use them, as those of a user's script would.
"""

import dataclasses
import datetime
import enum
import sys
import typing

import numpy


class Unit(enum.Enum):
    CELSIUS = "C"
    KELVIN = "K"


class Span(typing.NamedTuple):
    low: float
    high: float


@dataclasses.dataclass(frozen=True)
class Reading:
    sensor: str
    unit: Unit
    span: Span
    taken: datetime.datetime


class CalibrationError(Exception):
    """An exception with two args, and attributes its constructor sets from them."""

    def __init__(self, sensor, drift):
        super().__init__(sensor, drift)
        self.sensor, self.drift = sensor, drift


class Opaque:
    """A plain class, which only the pickle codec carries."""

    def __init__(self, payload):
        self.payload = payload


class ExitsWhenPickled:
    """Ends the process that pickles it, as CPython's suite's ExitAtPickle."""

    def __reduce__(self):
        raise SystemExit(7)


class ExitsWhenUnpickled:
    """Ends the process that unpickles it (the master, for a result)."""

    def __reduce__(self):
        return sys.exit, (7,)


def scale(array, factor):
    return array * factor


def to_kelvin(reading):
    """A Reading in, a Reading out: fails unless the worker rebuilt the classes."""
    if not isinstance(reading, Reading) or reading.unit is not Unit.CELSIUS:
        raise TypeError(f"not a Celsius reading: {reading!r}")
    span = Span(reading.span.low + 273.15, reading.span.high + 273.15)
    return Reading(reading.sensor, Unit.KELVIN, span, reading.taken)


def calibrate(sensor, drift):
    if drift > 0.5:
        raise CalibrationError(sensor, numpy.float64(drift))
    return sensor


def wrap(payload):
    return Opaque(payload)


def apply(function, value):
    return function(value)


def celsius_reading(sensor="t1"):
    """The Reading the round-trip tests send."""
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    return Reading(sensor, Unit.CELSIUS, Span(-1.5, 20.0), when)
