"""Run tasks inside a long-lived worker interpreter (local processes, MPI ranks).

A message names the program by digest; its code comes along the first time and is
executed once, so each later task is only a function call. Imports nothing but the
standard library and `pyboinc.contract`, since it runs on the workers.
"""

from __future__ import annotations

import linecache
import os
import types

from pyboinc import contract


class InProcessRunner:
    """Programs compiled so far, and data archives already unpacked here."""

    def __init__(self) -> None:
        self.functions: dict[str, types.FunctionType] = {}
        self.extracted: set[str] = set()

    def function_for(self, digest: str, function_name: str, code: str | None):
        if digest not in self.functions:
            if code is None:
                raise contract.ContractError(f"program {digest} was never sent to this worker")
            filename = f"<pymw task {function_name}>"
            # Register the source so tracebacks from the task show its lines.
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
            module = types.ModuleType(f"pymw_task_{function_name}")
            exec(compile(code, filename, "exec"), module.__dict__)
            self.functions[digest] = module.__dict__[function_name]
        return self.functions[digest]

    def run(self, header: dict, input_bytes: bytes) -> tuple[int, bytes]:
        """Run one task: header keys `program`, `function`, optional `code`, `data_zip`.

        Returns the exit status and the output envelope. Setup errors (an import that fails
        on this worker, a bad archive) are the task's error, reported like any other.
        """
        data_zip = header.get("data_zip")
        try:
            function = self.function_for(header["program"], header["function"], header.get("code"))
            if data_zip and data_zip not in self.extracted:
                contract.safe_extract(data_zip, os.getcwd())
                self.extracted.add(data_zip)
            args, _ = contract.decode_input(input_bytes)
        except Exception as error:
            outcome = contract.call_task(_raiser(error), ())
        else:
            outcome = contract.call_task(function, args)
        status = contract.EXIT_OK if outcome.ok else contract.EXIT_TASK_FAILED
        return status, contract.encode(outcome.to_envelope())


def _raiser(error: BaseException):
    def raise_setup_error():
        raise error

    return raise_setup_error
