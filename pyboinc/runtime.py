"""The frozen worker's entry point: run one PyMW task script under BOINC.

Command line (the worker contract, `pyboinc.contract`)::

    pymw_1.03_<platform> <script> <stdlib zip>[,<layer>...] <input> <output>

Every name is a BOINC logical name: in a slot they are small `<soft_link>` files, which
`boinc.resolve_filename` follows. The steps:

1. `boinc.init()` (afterwards stderr goes to the slot's stderr.txt, which BOINC reports);
2. resolve the four names; when the worker was built with a trusted key, refuse a script
   that is not signed with it and a stdlib zip it was not built with (`pyboinc.verify`):
   a one-line reason in stderr.txt and exit status 4 (EXIT_SCRIPT_REFUSED), before
   anything of the slot or of the task's inputs is on sys.path;
3. put the stdlib zip at `sys.path[0]` (a bundled partial package such as `email` must
   not hide the zip's full one) and behind the packages the worker has already imported
   (`add_stdlib_zip`); the package layers' cached trees right after it (`add_layers`,
   `pyboinc.layers`; a signing worker refuses a layer it was not built with, exit 4);
   the script's folder goes last, and on a signing worker only when the signed script
   asks for it (`signature.SLOT_IMPORTS_LINE`);
4. register this package's binding as the top-level module `boinc`;
5. run the script as `__main__` with `sys.argv = [script, input, output]` (resolved);
6. `boinc.finish(status)`: the script's SystemExit code, 0, or 1 for an uncaught
   exception (its traceback is written to stderr.txt first).

The same code runs under a normal Python (`python -m pyboinc ...`), which is how it is
tested without freezing.
"""

from __future__ import annotations  # verify.Trust is defined on first use

import os
import sys

from pyboinc import boinc_api, contract, interpreter, layers, signature, verify

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
    if isinstance(code, int) and 0 <= code <= boinc_api.MAX_EXIT_STATUS:
        return code
    if isinstance(code, int):  # the client would see only the low 8 bits (300 -> 44)
        code = f"{PROGRAM}: exit status {code} is outside 0-{boinc_api.MAX_EXIT_STATUS}"
    print(code, file=sys.stderr)
    return contract.EXIT_TASK_FAILED


def slot_importable(
    invocation: contract.Invocation, script: str, stdlib_zip: str, trusted: verify.Trust | None
) -> bool | None:
    """Whether the script's folder may go on sys.path; None, with the reason on stderr,
    when this worker trusts a key (it was built with one) and refuses the task: a script
    not signed with that key, or a stdlib zip other than the one it was built with.

    A worker without a key refuses nothing, and its scripts import from their folder as
    under `python script.py`; a signed script must ask (`signature.SLOT_IMPORTS_LINE`).
    `trusted` is `verify.trust()`.
    """
    if trusted is None:
        return True
    try:
        covered = verify.check_file(script, trusted.public_key)
    except verify.Refused as refusal:
        print(f"{PROGRAM}: refusing {invocation.script}: {refusal}", file=sys.stderr)
        return None
    try:
        verify.check_trusted_file(stdlib_zip, trusted.stdlib_zip, trusted)
    except verify.Refused as refusal:
        name = layers.split_zip_argument(invocation.stdlib_zip)[0]
        print(f"{PROGRAM}: refusing {name}: {refusal}", file=sys.stderr)
        return None
    return signature.asks_for_slot_imports(covered)


def add_layers(paths: list, stdlib_zip: str, trusted: verify.Trust | None) -> int:
    """Put the package layers on sys.path after the stdlib zip (`pyboinc.layers`); a
    signing worker (`trusted`, from `verify.trust()`) first refuses those it was not built
    with (by sha256, `pyboinc.verify`)."""
    if not paths:
        layers.sweep_beside(stdlib_zip)
        return contract.EXIT_OK
    check = None
    if trusted is not None:

        def check(path):
            verify.check_trusted_file(path, os.path.basename(path), trusted)

    try:
        layers.activate(paths, after=stdlib_zip, check=check)
    except verify.Refused as refusal:
        print(f"{PROGRAM}: refusing a layer: {refusal}", file=sys.stderr)
        return contract.EXIT_SCRIPT_REFUSED
    except layers.LayerError as error:
        print(f"{PROGRAM}: {error}", file=sys.stderr)
        return contract.EXIT_BAD_INPUT
    return contract.EXIT_OK


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
    stdlib_zip_name, layer_names = layers.split_zip_argument(invocation.stdlib_zip)
    stdlib_zip = os.path.abspath(resolve(stdlib_zip_name))
    layer_paths = [resolve(name) for name in layer_names]
    if not os.path.isfile(script):
        print(f"{PROGRAM}: no script {invocation.script} (resolved to {script})", file=sys.stderr)
        return contract.EXIT_BAD_INVOCATION
    if not os.path.isfile(stdlib_zip):
        print(f"{PROGRAM}: no stdlib zip {stdlib_zip_name}", file=sys.stderr)
        return contract.EXIT_BAD_INVOCATION
    for name, path in zip(layer_names, layer_paths, strict=True):
        if not os.path.isfile(path):
            print(f"{PROGRAM}: no layer {name} (resolved to {path})", file=sys.stderr)
            return contract.EXIT_BAD_INVOCATION
    # Looked up once: after add_stdlib_zip, a lookup would read the zip's whole directory
    # (pyboinc's __path__ then holds the zip), milliseconds of every start.
    trusted = verify.trust()
    slot_imports = slot_importable(invocation, script, stdlib_zip, trusted)
    if slot_imports is None:
        return contract.EXIT_SCRIPT_REFUSED
    add_stdlib_zip(stdlib_zip)
    status = add_layers(layer_paths, stdlib_zip, trusted)
    if status != contract.EXIT_OK:
        return status
    if slot_imports:  # last: a file sent with the task can add a module, never replace one
        sys.path.append(os.path.dirname(os.path.abspath(script)))
    install_boinc_module()
    interpreter.prepare_children()  # sys.executable is this worker: children act as python
    return run_script(script, [resolve(invocation.input), resolve(invocation.output)])


def entry_point() -> None:
    """Console entry: run the task and hand its status to boinc_finish (never returns)."""
    boinc_api.finish(main())


if __name__ == "__main__":
    entry_point()
