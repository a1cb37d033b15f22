"""Turn a task function, its dependencies and its modules into a worker contract script.

PyMW sends source code, not pickles: a worker may be another machine with another Python
(a cluster node, a volunteer's frozen PyBOINC worker), and what is sent is what the user
can read. The generated script imports the installed `pyboinc.contract` when the worker has
it, and otherwise runs the copy of the contract embedded in the script itself, so it needs
nothing but a Python interpreter.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import re
import textwrap
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pyboinc import contract

from .errors import UserError
from .interfaces.base import Program
from .signing import sign_script

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

_SCRIPT_TEMPLATE = '''\
#!/usr/bin/env python3
"""PyMW task script for {name} (generated; worker contract {version}).

Usage: python {{this script}} <input> <output>
"""
import sys

_PYMW_CONTRACT_SOURCE = {contract_source}
try:
    from pyboinc import contract as _pymw_contract

    if _pymw_contract.CONTRACT_VERSION != {version}:
        raise ImportError("another worker contract version")
except ImportError:
    import types as _pymw_types

    _pymw_contract = _pymw_types.ModuleType("pyboinc.contract")
    exec(compile(_PYMW_CONTRACT_SOURCE, "pyboinc/contract.py", "exec"), _pymw_contract.__dict__)

# ---- task code ----
{code}
# ---- end of task code ----

if __name__ == "__main__":
    sys.exit(_pymw_contract.task_main({function_name}))
'''


def _source_of(function: Callable) -> str:
    name = getattr(function, "__qualname__", repr(function))
    if not inspect.isfunction(function):
        raise UserError(
            f"cannot send {name!r} to workers: only plain Python functions can be tasks"
        )
    if function.__name__ == "<lambda>" or "<locals>" in function.__qualname__:
        raise UserError(
            f"cannot send {name} to workers: define it at the top level of a module file "
            "(lambdas and nested functions have no source a worker could run)"
        )
    try:
        return textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        raise UserError(
            f"cannot send {name} to workers: its source is not available; define it in a "
            ".py file rather than an interactive session"
        ) from None


def _import_lines(modules: Iterable[str]) -> list[str]:
    lines = []
    for module in modules:
        if not isinstance(module, str) or not _MODULE_NAME.match(module):
            raise UserError(
                f"modules must be importable module names such as 'random' or 'os.path', "
                f"got {module!r}"
            )
        lines.append(f"import {module}")
    return lines


def _referenced_modules(function: Callable) -> list[str]:
    """`import` lines for modules the function uses by a global name (`time.sleep`).

    PyMW 0.4 made users list them in `modules`; finding them spares the common mistake of
    a NameError on the worker. Names bound with `from m import f` are not modules and are
    still the user's to send (as `dep_funcs` or `modules`).
    """
    names: set[str] = set()
    pending = [function.__code__]
    while pending:
        code = pending.pop()
        names.update(code.co_names)
        pending.extend(const for const in code.co_consts if inspect.iscode(const))
    lines = []
    for name in sorted(names):
        value = function.__globals__.get(name)
        if inspect.ismodule(value):
            module = value.__name__
            lines.append(f"import {module}" if module == name else f"import {module} as {name}")
    return lines


def _script(name: str, function_name: str, code: str) -> str:
    return _SCRIPT_TEMPLATE.format(
        name=name,
        version=contract.CONTRACT_VERSION,
        contract_source=repr(_contract_source()),
        code=code,
        function_name=function_name,
    )


@functools.cache
def _contract_source() -> str:
    return inspect.getsource(contract)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def program_from_function(
    function: Callable, modules: Iterable[str] = (), dep_funcs: Iterable[Callable] = ()
) -> Program:
    """The program that runs `function` with `modules` imported and `dep_funcs` defined."""
    functions = [*dep_funcs, function]
    imports = _import_lines(modules)
    for item in functions:
        imports += [line for line in _referenced_modules(item) if line not in imports]
    parts = ["\n".join(imports)] if imports else []
    parts += [_source_of(dependency) for dependency in dep_funcs]
    parts.append(_source_of(function))
    code = "\n\n".join(parts) + "\n"
    script = _script(function.__name__, function.__name__, code)
    return Program(function.__name__, function.__name__, code, script, _digest(script))


def program_from_script(path: str | Path) -> Program:
    """A user-written script that follows the worker contract itself (`<input> <output>`)."""
    script_path = Path(path)
    try:
        script = script_path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"cannot read task script {path}: {error.strerror}") from None
    return Program(script_path.name, None, script, script, _digest(script))


def signed(program: Program, key: Ed25519PrivateKey) -> Program:
    """`program` with its script signed, for workers built to refuse unsigned scripts.

    Only `script` is signed: it is what leaves for other machines (fresh processes, custom
    worker apps, BOINC). `code` runs in-process on the user's own workers, which check
    nothing. The digest names the signed script, so it never mixes with the unsigned one.
    """
    script = sign_script(program.script, key)
    return dataclasses.replace(program, script=script, digest=_digest(script))
