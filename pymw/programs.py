"""Turn a task function, its dependencies and its modules into a worker contract script.

PyMW sends code, not pickles: a worker may be another machine with another Python (a
cluster node, a volunteer's frozen PyBOINC worker), and what is sent is what the user can
read. `pymw.shipping` decides how the function travels: an import line when the worker can
import it, otherwise its source with the module-level names it uses. The generated script
imports the installed `pyboinc.contract` when the worker has it, and otherwise runs the
copy of the contract embedded in the script itself, so it needs nothing but a Python
interpreter.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from pyboinc import contract

from . import shipping
from .digests import short_digest
from .errors import UserError
from .interfaces.base import Program
from .signing import sign_script

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FUTURE_ANNOTATIONS = "from __future__ import annotations\n"

# The function a map-chunk program's tasks call (see program_from_function).
MAP_CHUNK_FUNCTION = "_pymw_map_chunk"
_MAP_CHUNK_TEMPLATE = '''
import builtins as _pymw_builtins


def _pymw_map_chunk(*columns):
    """One task of Executor.map: {function} over a chunk of rows, one column per iterable.

    (The task's code may have names of its own called map or list.)"""
    return _pymw_builtins.list(_pymw_builtins.map({function}, *columns))
'''

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

# ---- task code: run by _pymw_task, as if it stood here ----
_PYMW_TASK_CODE = {code}
# ---- end of task code ----
_PYMW_TASK_LINE = {code_line}


def _pymw_task():
    """The task function, once the task code has run in this module: run here, not inline,
    so that its failure (an import this worker lacks) is the task's error, written to the
    output as any other, not a crash before there is one. The code is compiled at its own
    lines of this file (_PYMW_TASK_LINE), so tracebacks show them."""
    filename = _pymw_task.__code__.co_filename
    code = "\\n" * (_PYMW_TASK_LINE - 1) + _PYMW_TASK_CODE
    try:
        exec(compile(code, filename, "exec", dont_inherit=True), globals())
    except Exception as error:
        failure = error
    else:
        return globals()[{function_name!r}]

    def failed_to_set_up(*args, **kwargs):
        raise failure

    return failed_to_set_up


if __name__ == "__main__":
    sys.exit(_pymw_contract.task_main(_pymw_task()))
'''


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


def _script(name: str, function_name: str, code: str) -> str:
    fields = {
        "name": name,
        "version": contract.CONTRACT_VERSION,
        "contract_source": repr(_contract_source()),
        "function_name": function_name,
    }
    head, tail = _SCRIPT_TEMPLATE.split("{code}")
    head = head.format(**fields)
    literal = _verbatim_literal(code)
    # The literal opens with a newline: the code's first line is the one after its own.
    # A rare text no raw string holds goes as one line, its lines unshown in tracebacks.
    code_line = head.count("\n") + 1 if literal is not None else 1
    return head + (literal or repr(code)) + tail.format(code_line=code_line, **fields)


def _verbatim_literal(code: str) -> str | None:
    """`code` as a raw triple-quoted string opening with a newline, its lines as they are
    (so the script reads as the task's code, at the lines tracebacks name); None if no
    such literal can hold it."""
    if "\r" in code or "\0" in code or not code.endswith("\n"):
        return None
    for quotes in ('"""', "'''"):
        if quotes not in code:
            return f"r{quotes}\n{code}{quotes}"
    return None


@functools.cache
def _contract_source() -> str:
    # From the loader rather than inspect.getsource, which also keeps the file's lines
    # in linecache for the master's whole life.
    return contract.__spec__.loader.get_source(contract.__name__)


def _digest(text: str) -> str:
    return short_digest(text.encode("utf-8"))


@dataclasses.dataclass(frozen=True, eq=False)
class FunctionProgram(Program):
    """A program built from a function, with the classes its code ships or imports.

    `classes` maps "module:qualname" (as in the master) to the class: the allow-list the
    result decoder may rebuild exceptions and records into. No other class is ever built
    from what a worker sends back.
    """

    classes: Mapping[str, type] = dataclasses.field(default_factory=dict)


def program_from_function(
    function: Callable,
    modules: Iterable[str] = (),
    dep_funcs: Iterable[Callable] = (),
    *,
    map_chunks: bool = False,
) -> FunctionProgram:
    """The program that runs `function`, with `modules` imported and `dep_funcs` defined.

    With `map_chunks`, its tasks run `function` over argument columns (one list per
    iterable of `Executor.map`) and return the list of results: one task per chunk.
    """
    shipment = shipping.ship(function, tuple(dep_funcs))
    imports = _import_lines(modules)
    imports += [line for line in shipment.imports if line not in imports]
    parts = ["\n".join(imports)] if imports else []
    parts += shipment.definitions
    name = function_name = shipment.function_name
    if map_chunks:
        parts.append(_MAP_CHUNK_TEMPLATE.format(function=function_name).strip("\n"))
        name, function_name = f"{name}_map", MAP_CHUNK_FUNCTION
    body = "\n\n".join(parts) + "\n"
    code = (_FUTURE_ANNOTATIONS if shipment.future_annotations else "") + body
    script = _script(name, function_name, code)
    return FunctionProgram(
        name, function_name, code, script, _digest(script), dict(shipment.classes)
    )


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
