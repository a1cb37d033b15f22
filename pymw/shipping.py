"""How a task function travels to a worker: by reference, or as source with what it uses.

A function the worker can import (a builtin, `math.sqrt`, a function of an installed
package) is sent by reference: one `from module import name` line, run on the worker.
Anything else (a function of `__main__`, of the script's own modules) is sent as its
source, together with the module-level names it uses, found by reading its code with
`symtable`, transitively:

- modules and importable functions or classes become import lines;
- functions and classes of a module the worker cannot import are sent as their source;
- constants of plain data (numbers, strings, bytes, and lists, tuples, dicts and sets of
  them) are sent as literals, Enum members as `Class.MEMBER`;
- any other value (an open file, a lock, an object of some class) cannot be rebuilt from
  source and is refused at submit, with one line naming it.

"The worker can import it" means: it is a builtin, or its file is in the standard library,
in site-packages, in a folder on PYTHONPATH (which local workers inherit), or in a package
of an installed distribution (`pip install -e .` included). `__main__` and the script's
own folder are not: workers start elsewhere. Constants are captured when a function is
first submitted.
"""

from __future__ import annotations
import __future__

import enum
import functools
import importlib.machinery
import inspect
import math
import os
import site
import sys
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pyboinc.contract import class_key

from .errors import UserError

# A constant sent as a literal may be at most this many characters of source: a larger
# value belongs in the task's arguments or in a data file, sent once rather than per program.
MAX_CONSTANT_SOURCE_CHARS = 1 << 20
_LITERAL_SCALARS = (type(None), bool, int, str, bytes)
_MODULE_DUNDERS = frozenset(
    {"__name__", "__file__", "__doc__", "__builtins__", "__spec__", "__loader__", "__package__"}
)
# The files of a distribution's metadata folder that can name its top-level packages:
# what importlib.metadata reads for `packages_distributions()`.
_NAMING_FILES = ("top_level.txt", "RECORD", "installed-files.txt", "SOURCES.txt")


@dataclass
class Shipment:
    """The code that defines a task function on a worker, and what it brought along.

    `classes` maps "module:qualname" (the names the class has in the master) to every
    class the code ships or imports: the allow-list the result decoder may rebuild into.
    """

    function_name: str
    imports: list[str] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    classes: dict[str, type] = field(default_factory=dict)
    # The code needs `from __future__ import annotations`, as a module it comes from had.
    future_annotations: bool = False


def ship(function: Callable, dep_funcs: Iterable[Callable] = ()) -> Shipment:
    """What the worker runs to define `function` (and `dep_funcs`, kept for PyMW 0.4)."""
    name = _display_name(function)
    _check_callable(function, name)
    packer = _Packer(name)
    for dependency in dep_funcs:
        _check_callable(dependency, _display_name(dependency))
        packer.bind(_binding_name(dependency), dependency, where=None)
    function_name = _binding_name(function)
    packer.bind(function_name, function, where=None)
    return Shipment(
        function_name,
        packer.imports,
        packer.definitions,
        packer.classes,
        packer.future_annotations,
    )


# ------------------------------------------------------------------- what travels how


class _Packer:
    """Binds names in the worker's namespace, dependencies first (depth-first)."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name
        self.bound: dict[str, Any] = {}
        self.imports: list[str] = []
        self.definitions: list[str] = []
        self.classes: dict[str, type] = {}
        self.future_annotations = False

    def bind(self, name: str, value: Any, *, where: str | None) -> None:
        """Make `name` mean `value` on the worker. `where` is the module whose code uses
        the name, for messages; None for the task function itself."""
        if name in self.bound:
            if self.bound[name] is value or _same_constant(self.bound[name], value):
                return
            raise UserError(
                f"cannot send {self.task_name} to workers: the name {name!r} means two "
                f"different things in the code it uses (one in {where or 'the task'}); "
                "rename one"
            )
        self.bound[name] = value
        if inspect.isclass(value):
            self.classes.setdefault(class_key(value), value)
        if inspect.ismodule(value):
            self._bind_module(name, value, where)
            return
        reference = _reference(value)
        if reference is not None:
            self._bind_reference(name, value, *reference)
        elif _is_shippable_definition(value):
            self._ship_definition(name, value)
        elif isinstance(value, enum.Enum):
            self.bind(type(value).__name__, type(value), where=where)
            self.definitions.append(f"{name} = {type(value).__name__}.{value.name}")
        elif (owner := _defining_class(value)) is not None:  # `Point.norm`: its class travels
            self.bind(owner.__name__, owner, where=where)
            self.definitions.append(f"{name} = {owner.__name__}.{value.__name__}")
        elif callable(value):
            subject = "it" if where is None else f"it uses {name!r} (of {where}), which"
            raise UserError(f"cannot send {self.task_name} to workers: {subject} {_why_not(value)}")
        else:
            self.definitions.append(f"{name} = {self._literal(name, value, where)}")

    def _bind_module(self, name: str, module: types.ModuleType, where: str) -> None:
        if not worker_can_import(module.__name__):
            raise UserError(
                f"cannot send {self.task_name} to workers: it uses the module "
                f"{module.__name__!r} (in {where}), which the workers cannot import; install "
                f"it (pip install -e .) or import the names it needs with "
                f"`from {module.__name__} import ...`"
            )
        line = f"import {module.__name__}"
        self.imports.append(line if module.__name__ == name else f"{line} as {name}")

    def _bind_reference(self, name: str, value: Any, module: str, path: str) -> None:
        root, _, rest = path.partition(".")
        line = f"from {module} import {root}" + ("" if root == name else f" as {name}")
        self.imports.append(line)
        if rest:
            self.imports.append(f"{name} = {name}.{rest}")
        for cls in _named_classes(value):
            self.classes.setdefault(class_key(cls), cls)

    def _ship_definition(self, name: str, value: Any) -> None:
        """Send the source of a function or class, after the names it uses."""
        source = _source(value, self.task_name)
        own_name = value.__name__
        if own_name != name:
            self.bind(own_name, value, where=value.__module__)
        namespace = getattr(value, "__globals__", None) or vars(sys.modules[value.__module__])
        # Under the future import, annotations are never evaluated: names used only in
        # them (TYPE_CHECKING imports) need not travel.
        future = namespace.get("annotations") is __future__.annotations
        self.future_annotations = self.future_annotations or future
        for used in sorted(_global_names(source, future) - {own_name}):
            if used in namespace and used not in _MODULE_DUNDERS:
                self.bind(used, namespace[used], where=value.__module__)
        if own_name != name:
            self.definitions.append(f"{name} = {own_name}")
            return
        self.definitions.append(source.rstrip("\n"))
        if inspect.isclass(value):
            # The class keeps its master-side module name, so that the worker names it
            # the way the master's allow-list does (and so do its reprs and pickles).
            self.definitions.append(f"{own_name}.__module__ = {value.__module__!r}")

    def _literal(self, name: str, value: Any, where: str) -> str:
        try:
            return _literal_source(value, set(), [MAX_CONSTANT_SOURCE_CHARS])
        except _TooBig:
            raise UserError(
                f"cannot send {self.task_name} to workers: the module-level constant {name!r} "
                f"(in {where}) is over {MAX_CONSTANT_SOURCE_CHARS:,} characters of source; "
                "pass it as an argument or a data file"
            ) from None
        except (_NotALiteral, RecursionError) as problem:
            what = problem if isinstance(problem, _NotALiteral) else "a value nested too deep"
            raise UserError(
                f"cannot send {self.task_name} to workers: it uses the module-level name "
                f"{name!r} (in {where}), {what}, which cannot travel as source; pass it "
                "as an argument, or create it inside the function"
            ) from None


def _check_callable(function: Any, name: str) -> None:
    if not callable(function):
        raise UserError(f"cannot send {name} to workers: a task must be a function")
    if getattr(function, "__name__", None) == "<lambda>":
        raise UserError(
            f"cannot send {name} to workers: define it with def at the top level of a module "
            "(lambdas and nested functions have no source a worker could run)"
        )


def _why_not(value: Any) -> str:
    """Why a callable can travel neither by reference nor as source."""
    qualname = getattr(value, "__qualname__", "") or ""
    owner = getattr(value, "__self__", None)
    if owner is not None and not inspect.ismodule(owner) and not inspect.isclass(owner):
        return (
            f"is a method bound to a {type(owner).__qualname__} object; submit a "
            "module-level function and pass the object's data as arguments"
        )
    if "<locals>" in qualname:
        return (
            "is defined inside a function; define it at the top level of a module "
            "(lambdas and nested functions have no source a worker could run)"
        )
    if inspect.isfunction(value) and "." in qualname:
        owner_name = qualname.rsplit(".", 1)[0]
        return (
            f"is defined in the class {owner_name}; submit a module-level function that "
            "calls it, with the object as an argument"
        )
    return (
        f"is a {type(value).__qualname__}, which cannot travel as source; use a function "
        "defined at the top level of a module"
    )


def _display_name(value: Any) -> str:
    return getattr(value, "__qualname__", None) or repr(value)


def _binding_name(function: Any) -> str:
    name = getattr(function, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise UserError(
            f"cannot send {function!r} to workers: it has no name to define it by on a worker "
            "(a functools.partial or a callable object); submit a module-level function "
            "and pass what it fixes as arguments, or use Executor(codec='pickle')"
        )
    return name


# ----------------------------------------------------------------------- by reference


def _reference(value: Any) -> tuple[str, str] | None:
    """(module, attribute path) by which a worker can import `value`, or None."""
    owner = getattr(value, "__self__", None)
    if owner is not None and not inspect.ismodule(owner):
        if not inspect.isclass(owner):
            return None  # a method bound to an instance: the instance cannot be imported
        base = _reference(owner)
        name = getattr(value, "__name__", "")
        return (base[0], f"{base[1]}.{name}") if base and getattr(owner, name) == value else None
    module = getattr(value, "__module__", None)
    if module is None and owner is not None:
        module = owner.__name__  # a builtin function of a C module, e.g. math.sqrt
    if module is None:
        module = getattr(getattr(value, "__objclass__", None), "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        return None
    for candidate in _public_names(module):
        if worker_can_import(candidate) and _resolves_to(candidate, qualname, value):
            return candidate, qualname
    return None


def _public_names(module: str) -> list[str]:
    """`module`, preceded by its public face: os for posix/nt, operator for _operator."""
    if module in ("posix", "nt"):
        return ["os", module]
    if module.startswith("_") and not module.startswith("__"):
        return [module.lstrip("_"), module]
    return [module]


def _resolves_to(module_name: str, path: str, value: Any) -> bool:
    module = sys.modules.get(module_name)
    if module is None:
        return False  # never imported here, so `value` cannot have come from it
    target: Any = module
    for part in path.split("."):
        target = getattr(target, part, None)
    return target is value or (inspect.ismethod(value) and target == value)


def worker_can_import(module_name: str) -> bool:
    """True when workers started by this master can `import module_name` themselves."""
    if module_name == "__main__":
        return False
    top = module_name.partition(".")[0]
    if top in sys.builtin_module_names:
        return True
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if filename is None:
        origin = getattr(getattr(module, "__spec__", None), "origin", None)
        if origin in ("built-in", "frozen"):
            return True
    elif _import_root(module_name, filename) in _importable_roots():
        return True
    # Last, as it reads every installed distribution's metadata (megabytes, once).
    return _may_be_installed(top) and top in _installed_top_level_names()


def _import_root(module_name: str, filename: str) -> str:
    """The sys.path folder `module_name` was imported from (`a.b` in <root>/a/b.py)."""
    # The folder, not the file, is resolved: a module may be a symlink to elsewhere.
    folder = os.path.realpath(os.path.dirname(os.path.abspath(filename)))
    if os.path.basename(filename).startswith("__init__."):
        folder = os.path.dirname(folder)
    for _ in range(module_name.count(".")):
        folder = os.path.dirname(folder)
    return folder


def _importable_roots() -> set[str]:
    python_path = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return _standard_roots() | {os.path.realpath(path) for path in python_path if path}


@functools.cache
def _standard_roots() -> frozenset[str]:
    """The interpreter's own folders: the standard library (with its zip and extension
    modules) and site-packages. Every worker of this interpreter has them.

    The standard library is the folder `os` came from, not `sysconfig.get_paths()`: that
    loads the interpreter's whole build configuration, over half a megabyte of the master's
    memory, for one folder name.
    """
    roots = {os.path.dirname(os.__file__), *site.getsitepackages()}
    if site.ENABLE_USER_SITE:
        roots.add(site.getusersitepackages())
    prefixes = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix)}
    roots.update(
        path for path in sys.path if path and os.path.realpath(path).startswith(tuple(prefixes))
    )
    return frozenset(os.path.realpath(root) for root in roots)


@functools.cache
def _may_be_installed(top: str) -> bool:
    """False only when no distribution's metadata on sys.path mentions `top` at all.

    A cheap exact "no" before `_installed_top_level_names`: importing importlib.metadata
    and parsing every distribution's metadata costs the master about 3.5 MB, for what is
    most often a script's own module that no distribution names. A distribution naming
    `top` has it verbatim in one of `_NAMING_FILES`. What this scan cannot read (a zip on
    sys.path, a custom distribution finder) answers "maybe".
    """
    if any(
        hasattr(finder, "find_distributions") and finder is not importlib.machinery.PathFinder
        for finder in sys.meta_path
    ):
        return True
    for entry in sys.path:
        folder = entry or os.curdir
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return True
            continue
        if any(_mentions(metadata, top) for metadata in _metadata_folders(folder)):
            return True
    return False


def _metadata_folders(folder: str) -> Iterable[str]:
    """The distribution metadata folders importlib.metadata finds in one sys.path folder."""
    in_egg = folder.lower().endswith(".egg")
    for name in os.listdir(folder):
        lower = name.lower()
        if lower.endswith((".dist-info", ".egg-info")) or (in_egg and lower == "egg-info"):
            yield os.path.join(folder, name)


def _mentions(metadata: str, top: str) -> bool:
    if not os.path.isdir(metadata):
        return False
    for name in _NAMING_FILES:
        try:
            with open(os.path.join(metadata, name), encoding="utf-8", errors="replace") as file:
                if top in file.read():
                    return True
        except OSError:
            continue
    return False


@functools.cache
def _installed_top_level_names() -> frozenset[str]:
    """Top-level packages of installed distributions, editable installs included."""
    import importlib.metadata

    return frozenset(importlib.metadata.packages_distributions())


def _named_classes(value: Any) -> list[type]:
    """Classes a referenced callable names: itself if a class, and for a Python function
    the classes among the globals it uses (exceptions it may raise, results it builds)."""
    if inspect.isclass(value):
        return [value]
    function = inspect.unwrap(value) if callable(value) else value
    code = getattr(function, "__code__", None)
    namespace = getattr(function, "__globals__", None)
    if code is None or namespace is None:
        return []
    return [namespace[n] for n in _code_names(code) if inspect.isclass(namespace.get(n))]


def _code_names(code: types.CodeType) -> set[str]:
    names, pending = set(), [code]
    while pending:
        current = pending.pop()
        names.update(current.co_names)
        pending.extend(const for const in current.co_consts if inspect.iscode(const))
    return names


# -------------------------------------------------------------------------- by source


def _is_shippable_definition(value: Any) -> bool:
    """A function or class defined at the top level of its (non-importable) module."""
    target = inspect.unwrap(value) if callable(value) else value
    if not (inspect.isfunction(target) or inspect.isclass(value)):
        return False
    module = sys.modules.get(getattr(value, "__module__", None) or "")
    name = getattr(value, "__name__", "")
    return module is not None and getattr(module, name, None) is value


def _defining_class(value: Any) -> type | None:
    """The class whose body defined the function `value` (`Point.norm`, a method or a
    staticmethod, taken from the class), when that class travels as source itself."""
    if not inspect.isfunction(value):
        return None
    owner_name, _, attribute = value.__qualname__.rpartition(".")
    if not owner_name.isidentifier():  # top level, nested in a function, or a nested class
        return None
    owner = getattr(sys.modules.get(value.__module__ or ""), owner_name, None)
    if not inspect.isclass(owner) or getattr(owner, attribute, None) is not value:
        return None
    return owner if _is_shippable_definition(owner) else None


def _source(value: Any, task_name: str) -> str:
    name = getattr(value, "__qualname__", repr(value))
    try:
        return textwrap.dedent(inspect.getsource(value))
    except (OSError, TypeError):
        raise UserError(
            f"cannot send {task_name} to workers: the source of {name} is not available; "
            "define it in a .py file rather than an interactive session"
        ) from None


def _global_names(source: str, future_annotations: bool) -> set[str]:
    """Module-level names a definition's source reads (or assigns with `global`)."""
    import symtable  # here: a function sent by reference, the common case, never needs it

    names: set[str] = set()
    head = "from __future__ import annotations\n" if future_annotations else ""
    pending = [symtable.symtable(head + source, "<pymw task>", "exec")]
    while pending:
        table = pending.pop()
        for symbol in table.get_symbols():
            if symbol.is_global() and (symbol.is_referenced() or symbol.is_declared_global()):
                names.add(symbol.get_name())
        pending.extend(table.get_children())
    return names


# --------------------------------------------------------------------------- literals


class _NotALiteral(Exception):
    """A value with no literal source; its message describes the value."""


class _TooBig(Exception):
    """A literal over its budget of characters."""


def _literal_source(value: Any, containing: set[int], budget: list[int]) -> str:
    """Python source that rebuilds `value`, for plain data only (exact types), within
    `budget[0]` characters (counted down as the pieces are made)."""
    kind = type(value)
    if kind in _LITERAL_SCALARS:
        return _spend(repr(value), budget)
    if kind is float:
        text = repr(value) if math.isfinite(value) else f"float({repr(value)!r})"
        return _spend(text, budget)
    if kind is complex:
        real, imag = (
            _literal_source(part, containing, budget) for part in (value.real, value.imag)
        )
        return f"complex({real}, {imag})"
    if kind not in (list, tuple, dict, set, frozenset):
        raise _NotALiteral(f"a {kind.__module__}.{kind.__qualname__}")
    if id(value) in containing:
        raise _NotALiteral(f"a {kind.__name__} that contains itself")
    containing = containing | {id(value)}
    _spend(" " * 2 * len(value), budget)  # separators, and a bound before any recursion
    if kind is dict:
        items = ", ".join(
            f"{_literal_source(k, containing, budget)}: {_literal_source(v, containing, budget)}"
            for k, v in value.items()
        )
        return "{" + items + "}"
    items = ", ".join(_literal_source(item, containing, budget) for item in value)
    if kind is list:
        return f"[{items}]"
    if kind is tuple:
        return f"({items},)" if len(value) == 1 else f"({items})"
    if not value:
        return f"{kind.__name__}()"
    return "{" + items + "}" if kind is set else "frozenset({" + items + "})"


def _spend(text: str, budget: list[int]) -> str:
    budget[0] -= len(text)
    if budget[0] < 0:
        raise _TooBig
    return text


def _same_constant(bound: Any, value: Any) -> bool:
    """Two plain-data constants with the same literal are the same thing on a worker."""
    try:
        budget = [MAX_CONSTANT_SOURCE_CHARS]
        return _literal_source(bound, set(), budget) == _literal_source(value, set(), budget)
    except (_NotALiteral, _TooBig, RecursionError):
        return False
