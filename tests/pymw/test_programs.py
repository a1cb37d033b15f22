"""How a task function becomes a program: by reference, or as source with what it uses.

Each program's code is run here in a fresh namespace, as a worker runs it, with the
user's module out of reach (removed from sys.modules and sys.path), so a test passes
only if everything the function needs travelled in the code.
"""

import functools
import importlib
import itertools
import math
import os
import subprocess
import sys
import textwrap
import time
import types

import packaging.version
import pytest

from pyboinc import contract
from pymw.errors import UserError
from pymw.programs import program_from_function

USER_MODULE = '''
from __future__ import annotations

import enum
import functools
import math
from typing import TYPE_CHECKING

from collections import OrderedDict as Ordered

if TYPE_CHECKING:
    from decimal import Decimal  # only in annotations: must not be needed on the worker

SCALE = 2.5
TABLE = {"a": (1, 2.0, None), "b": [b"x", {1, 2}, frozenset()], ("k",): float("inf")}


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


FAVOURITE = Colour.BLUE


class Problem(Exception):
    """A user-defined error the task raises."""


class Point:
    def __init__(self, x: Decimal | float):
        self.x = x

    def norm(self):
        return math.hypot(self.x, OFFSET)


OFFSET = 0.0


@functools.lru_cache(maxsize=None)
def cached_double(x):
    return 2 * x


def is_even(n):
    return n == 0 or is_odd(n - 1)


def is_odd(n):
    return n != 0 and is_even(n - 1)


def helper(x):
    return Point(x).norm() * SCALE


def task(x):
    if x < 0:
        raise Problem(f"negative: {x}")
    ordered = Ordered(a=1)
    return (helper(x) + len(TABLE) + len(ordered), cached_double(x), is_even(x), FAVOURITE.name)
'''


_module_numbers = itertools.count()


@pytest.fixture
def user_module(tmp_path, monkeypatch, request):
    """Import `source` as a module from a folder of its own, as a user's script imports
    a module beside it: not importable by the workers."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def load(source: str):
        name = f"user_module_{next(_module_numbers)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        request.addfinalizer(lambda: sys.modules.pop(name, None))
        return importlib.import_module(name)

    return load


def run_on_fresh_worker(program, *args, hide=()):
    """Execute the program's code as a worker does, without the modules in `hide`."""
    saved = {name: sys.modules.pop(name) for name in hide if name in sys.modules}
    saved_path = list(sys.path)
    sys.path[:] = [
        p for p in sys.path if not any(os.path.exists(os.path.join(p, f"{h}.py")) for h in hide)
    ]
    try:
        namespace = types.ModuleType("pymw_task")
        exec(compile(program.code, "<task>", "exec"), namespace.__dict__)
        return getattr(namespace, program.function_name)(*args), namespace
    finally:
        sys.path[:] = saved_path
        sys.modules.update(saved)


@pytest.mark.parametrize(
    ("function", "line"),
    [
        (pow, "from builtins import pow"),
        (math.sqrt, "from math import sqrt"),
        (time.sleep, "from time import sleep"),
        (os.getpid, "from os import getpid"),
        (os.path.join, f"from {os.path.__name__} import join"),
        (textwrap.dedent, "from textwrap import dedent"),
        (packaging.version.parse, "from packaging.version import parse"),
    ],
)
def test_importable_functions_travel_by_reference(function, line):
    program = program_from_function(function)
    assert program.code.strip() == line
    namespace = {}
    exec(program.code, namespace)
    assert namespace[program.function_name] is function


def test_a_classmethod_travels_as_its_class_and_attribute():
    program = program_from_function(dict.fromkeys)
    assert program.code.splitlines() == [
        "from builtins import dict as fromkeys",
        "fromkeys = fromkeys.fromkeys",
    ]
    result, _ = run_on_fresh_worker(program, "ab")
    assert result == {"a": None, "b": None}


def test_a_method_of_the_users_class_travels_as_its_class_and_attribute(user_module):
    """`ex.map(Point.norm, points)`, as ProcessPoolExecutor takes it: the class travels
    as source with what it uses, and the task is its attribute."""
    module = user_module(USER_MODULE)
    program = program_from_function(module.Point.norm)
    assert program.code.splitlines()[-1] == "norm = Point.norm"
    assert program.classes[f"{module.__name__}:Point"] is module.Point
    result, namespace = run_on_fresh_worker(program, module.Point(3.0), hide=[module.__name__])
    assert result == 3.0
    assert namespace.Point.__module__ == module.__name__


def test_a_staticmethod_of_the_users_class_travels_too(user_module):
    module = user_module("class Box:\n    @staticmethod\n    def twice(v):\n        return 2 * v\n")
    program = program_from_function(module.Box.twice)
    assert run_on_fresh_worker(program, 21, hide=[module.__name__])[0] == 42


def test_a_method_of_a_class_that_cannot_travel_names_the_class(user_module):
    module = user_module(
        "class Outer:\n    class Inner:\n        def f(self):\n            return 1\n"
    )
    with pytest.raises(UserError, match=r"it is defined in the class Outer\.Inner; submit a"):
        program_from_function(module.Outer.Inner.f)


def _run_script(program, tmp_path, *args):
    """Run a program's script as a fresh process runs it: (outcome, stderr)."""
    (tmp_path / "task.py").write_text(program.script)
    (tmp_path / "in").write_bytes(contract.encode_input(args))
    run = subprocess.run(
        [sys.executable, "task.py", "in", "out"], cwd=tmp_path, capture_output=True, text=True
    )
    return contract.decode_output((tmp_path / "out").read_bytes()), run.stderr


@pytest.mark.parametrize(
    "source",
    [
        'def f(x):\n    """Doubles."""\n    return 2 * x\n',
        "def f(x):\n    '''Doubles.'''\n    return 2 * x\n",
        # Both triple quotes: no raw string holds it, the script carries it as one line.
        "def f(x):\n    \"\"\"Doubles.\"\"\"\n    return [2 * x, ''''''][0]\n",
        # Backslashes stay as written: r"\n\t" is 4 characters, in the master and the script.
        'def f(x):\n    return 2 * x + len(r"\\n\\t") - 4\n',
    ],
)
def test_a_script_runs_its_code_whatever_quotes_it_holds(user_module, tmp_path, source):
    program = program_from_function(user_module(source).f)
    outcome, stderr = _run_script(program, tmp_path, 3)
    assert outcome.ok, stderr
    assert outcome.value == 6
    # The script reads as the task's code, but for the text no raw string can hold.
    assert (source in program.script) == ('"""' not in source or "'''" not in source)


def test_a_script_whose_code_fails_to_set_up_reports_it_as_the_tasks_error(tmp_path):
    """Not a crash before the output is written: an ImportError, with the line."""
    program = program_from_function(pow, modules=("pymw_no_such_module",))
    outcome, _ = _run_script(program, tmp_path, 2, 3)
    assert outcome.error_type == "ModuleNotFoundError"
    assert "import pymw_no_such_module" in outcome.traceback


def test_a_partial_is_refused_with_the_two_ways_out():
    with pytest.raises(UserError, match=r"pass what it fixes as arguments, or use Executor\("):
        program_from_function(functools.partial(pow, 2))


def test_a_function_of_the_users_module_travels_with_all_it_uses(user_module):
    module = user_module(USER_MODULE)
    program = program_from_function(module.task)
    result, namespace = run_on_fresh_worker(program, 3.0, hide=[module.__name__])
    assert result == module.task(3.0)
    assert "import math" in program.code
    assert "from collections import OrderedDict as Ordered" in program.code
    assert "Decimal" not in program.code.replace("Decimal | float", "")
    # The shipped classes keep their master names, which the result decoder's allow-list uses.
    assert namespace.Problem.__module__ == module.__name__
    assert program.classes[f"{module.__name__}:Problem"] is module.Problem
    assert program.classes[f"{module.__name__}:Point"] is module.Point
    with pytest.raises(namespace.Problem, match="negative"):
        namespace.task(-1)


def test_constants_are_captured_when_the_program_is_built(user_module):
    module = user_module("LIMIT = 3\ndef over(x):\n    return x > LIMIT\n")
    program = program_from_function(module.over)
    module.LIMIT = 100
    assert run_on_fresh_worker(program, 10, hide=[module.__name__])[0] is True


def test_global_state_set_by_the_function_starts_from_the_masters_value(user_module):
    module = user_module(
        "STATUS = 'uninitialized'\n"
        "def set_status(x):\n    global STATUS\n    STATUS = x\n    return STATUS\n"
    )
    program = program_from_function(module.set_status)
    result, namespace = run_on_fresh_worker(program, "set", hide=[module.__name__])
    assert result == namespace.STATUS == "set"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "import threading\nLOCK = threading.Lock()\ndef f():\n    with LOCK: pass\n",
            "'LOCK'.*lock",
        ),
        (
            "HANDLE = open(__file__)\ndef f():\n    return HANDLE.read()\n",
            "'HANDLE'.*TextIOWrapper",
        ),
        ("class C: pass\nOBJ = C()\ndef f():\n    return OBJ\n", "'OBJ'.*C, which cannot"),
        ("BIG = 'x' * 2_000_000\ndef f():\n    return BIG\n", "'BIG'.*characters of source"),
        ("LOOP = []\nLOOP.append(LOOP)\ndef f():\n    return LOOP\n", "'LOOP'.*contains itself"),
        (
            "def make():\n    def inner(): return 1\n    return inner\nINNER = make()\n"
            "def f():\n    return INNER()\n",
            "'INNER'.*defined inside a function",
        ),
    ],
)
def test_values_that_cannot_travel_are_refused_naming_them(user_module, source, message):
    module = user_module(source)
    with pytest.raises(UserError, match=message) as refused:
        program_from_function(module.f)
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith("cannot send f to workers")


def test_a_module_the_workers_cannot_import_is_refused_with_the_fix(user_module):
    helpers = user_module("def g():\n    return 1\n")
    module = user_module(
        f"import {helpers.__name__} as helpers\ndef f():\n    return helpers.g()\n"
    )
    with pytest.raises(
        UserError, match=f"module '{helpers.__name__}'.*from {helpers.__name__} import"
    ):
        program_from_function(module.f)


def test_names_imported_from_another_user_module_travel_as_source(user_module):
    helpers = user_module("FACTOR = 3\ndef g(x):\n    return x * FACTOR\n")
    module = user_module(
        f"from {helpers.__name__} import g as triple\ndef f(x):\n    return triple(x)\n"
    )
    result, _ = run_on_fresh_worker(
        program_from_function(module.f), 2, hide=[module.__name__, helpers.__name__]
    )
    assert result == 6


def test_one_name_meaning_two_things_is_refused(user_module):
    helpers = user_module("SIZE = 1\ndef g():\n    return SIZE\n")
    module = user_module(
        f"from {helpers.__name__} import g\nSIZE = 2\ndef f():\n    return g() + SIZE\n"
    )
    with pytest.raises(UserError, match="'SIZE' means two different things in"):
        program_from_function(module.f)


def test_methods_bound_to_objects_and_lambdas_are_refused():
    class Thing:
        def method(self):
            return 1

    with pytest.raises(UserError, match=r"bound to a .*Thing object"):
        program_from_function(Thing().method)
    with pytest.raises(UserError, match="lambdas"):
        program_from_function(lambda: 1)


def test_map_chunk_programs_call_the_function_over_argument_columns():
    program = program_from_function(pow, map_chunks=True)
    result, _ = run_on_fresh_worker(program, [2, 3, 4], [1, 2, 3])
    assert result == [2, 9, 64]


def test_pymw_master_submit_task_ships_helpers_classes_and_exceptions(user_module):
    from pymw import pymw
    from pymw.interfaces.generic import GenericInterface

    module = user_module(USER_MODULE)
    with pymw.PyMW_Master(GenericInterface(num_workers=1), show_progress=False) as master:
        task = master.submit_task(module.task, input_data=(3.0,))
        assert master.get_result(task)[1] == module.task(3.0)
        failing = master.submit_task(module.task, input_data=(-1,))
        with pytest.raises(module.Problem, match="negative: -1"):
            master.get_result(failing)


def test_under_future_annotations_names_only_in_annotations_need_not_travel(user_module):
    module = user_module(
        "from __future__ import annotations\nimport threading\nGUARD = threading.Lock()\n"
        "def double(x: list[float], guard: GUARD = None) -> list[float]:\n"
        "    return [2 * v for v in x]\n"
    )
    program = program_from_function(module.double)
    assert run_on_fresh_worker(program, [1.5], hide=[module.__name__])[0] == [3.0]
