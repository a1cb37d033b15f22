"""The frozen worker's entry point: run one PyMW task script under BOINC.

Command line (the worker contract, `pyboinc.contract`)::

    pymw_1.03_<platform> <script> <stdlib zip> <input> <output>

Every name is a BOINC logical name: in a slot they are small `<soft_link>` files, which
`boinc.resolve_filename` follows. The steps:

1. `boinc.init()` (afterwards stderr goes to the slot's stderr.txt, which BOINC reports);
2. resolve the four names; when the worker was built with a trusted key, refuse a script
   that is not signed with it (`pyboinc.verify`): a one-line reason in stderr.txt and exit
   status 4 (EXIT_SCRIPT_REFUSED), before anything of the slot is on sys.path;
3. put the stdlib zip at `sys.path[0]` (a bundled partial package such as `email` must
   not hide the zip's full one), the script's folder after it, and the zip behind the
   packages the worker has already imported (`add_stdlib_zip`);
4. register this package's binding as the top-level module `boinc`;
5. run the script as `__main__` with `sys.argv = [script, input, output]` (resolved);
6. `boinc.finish(status)`: the script's SystemExit code, 0, or 1 for an uncaught
   exception (its traceback is written to stderr.txt first).

The same code runs under a normal Python (`python -m pyboinc ...`), which is how it is
tested without freezing.
"""

import os
import sys

from pyboinc import boinc_api, contract, interpreter, verify

PROGRAM = "pymw worker"


def install_boinc_module() -> None:
    """Make `import boinc` give the typed binding, in the frozen worker and in tests."""
    sys.modules.setdefault("boinc", boinc_api)


def unpack_archive(logical_name: str, destination: str = ".") -> list:
    """Unpack a zipped directory tree sent with a task into `destination` (the slot).

    The name is resolved like every slot file; `pyboinc.contract.safe_extract` does the
    work (it reads Deflate64 and refuses path traversal, symlinks and zip bombs).
    """
    return contract.safe_extract(boinc_api.resolve_filename(logical_name), destination)


def add_stdlib_zip(stdlib_zip: str) -> None:
    """Put the stdlib zip first on sys.path, and behind every package already imported.

    The executable carries only the part of a package its own code needed (urllib holds
    parse but not request), and a package imported before this point keeps its frozen
    __path__: appending the zip's folder there makes the rest of the package importable.
    """
    sys.path.insert(0, stdlib_zip)
    if not getattr(sys, "frozen", False):
        return
    for name, module in list(sys.modules.items()):
        package_path = getattr(module, "__path__", None)
        if isinstance(package_path, list):
            package_path.append(os.path.join(stdlib_zip, *name.split(".")))


def _exit_status(code) -> int:
    # Same rules as the interpreter's own handling of SystemExit.
    if code is None:
        return contract.EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return contract.EXIT_TASK_FAILED


def refuses(logical_name: str, script: str) -> bool:
    """True, with the reason on stderr, when this worker trusts a key (it was built with
    one) and `script` is not signed with it. A worker without a key refuses nothing."""
    public_key = verify.trusted_key()
    if public_key is None:
        return False
    try:
        verify.check_file(script, public_key)
    except verify.ScriptRefused as refusal:
        print(f"{PROGRAM}: refusing {logical_name}: {refusal}", file=sys.stderr)
        return True
    return False


def run_script(script: str, args: list) -> int:
    """Run `script` as __main__ with sys.argv = [script, *args]; return its exit status."""
    saved_argv = sys.argv
    sys.argv = [script, *args]
    try:
        interpreter.run_as_main(script)
    except SystemExit as exit_request:
        return _exit_status(exit_request.code)
    except BaseException:  # the task failed: its traceback is what BOINC reports
        import traceback  # only then: 4 ms of start-up

        traceback.print_exc()
        return contract.EXIT_TASK_FAILED
    finally:
        sys.argv = saved_argv
    return contract.EXIT_OK


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    boinc_api.init()
    try:
        invocation = contract.parse_worker_args(argv, with_stdlib_zip=True)
    except contract.ContractError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return contract.EXIT_BAD_INVOCATION
    resolve = boinc_api.resolve_filename
    script = resolve(invocation.script)
    stdlib_zip = os.path.abspath(resolve(invocation.stdlib_zip))
    if not os.path.isfile(script):
        print(f"{PROGRAM}: no script {invocation.script} (resolved to {script})", file=sys.stderr)
        return contract.EXIT_BAD_INVOCATION
    if not os.path.isfile(stdlib_zip):
        print(f"{PROGRAM}: no stdlib zip {invocation.stdlib_zip}", file=sys.stderr)
        return contract.EXIT_BAD_INVOCATION
    if refuses(invocation.script, script):
        return contract.EXIT_SCRIPT_REFUSED
    add_stdlib_zip(stdlib_zip)
    sys.path.insert(1, os.path.dirname(os.path.abspath(script)))
    install_boinc_module()
    interpreter.prepare_children()  # sys.executable is this worker: children act as python
    return run_script(script, [resolve(invocation.input), resolve(invocation.output)])


def entry_point() -> None:
    """Console entry: run the task and hand its status to boinc_finish (never returns)."""
    boinc_api.finish(main())


if __name__ == "__main__":
    entry_point()
