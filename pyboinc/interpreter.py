"""The frozen worker as `sys.executable`: a python command line for a task's children.

A task may run `subprocess.run([sys.executable, "-c", ...])`, or use `multiprocessing`
(spawn and forkserver start `sys.executable` with `--multiprocessing-fork ...` or
`-c "from multiprocessing... import main; ..."`). In the frozen worker `sys.executable` is
the worker itself, so it must then act as python, not as a new BOINC task: it never calls
`boinc_init` (which would wait on the slot's `boinc_lockfile`).

The task process marks its children with CHILD_PATH_VARIABLE, its `sys.path` (the stdlib
zip first): a child puts it back before it imports anything from the zip. A child also asks
the kernel for SIGTERM when its parent dies (PR_SET_PDEATHSIG), and so does every process
the task forks: when BOINC kills the task with SIGKILL, nothing of it runs on. SIGTERM
rather than SIGKILL lets multiprocessing's resource tracker, which ignores SIGTERM, outlive
the task just long enough to remove the task's semaphores.
"""

import io
import os
import sys
import types

CHILD_PATH_VARIABLE = "PYBOINC_CHILD_SYS_PATH"
SLOT_TEMP_DIR = "tmp"  # the task's TMPDIR, in the slot
_PR_SET_PDEATHSIG = 1
# python's options without a value, and those with one (`-W arg`, `-X opt`): accepted and
# ignored, as `subprocess._args_from_interpreter_flags()` passes them to helper processes.
_FLAGS = set("bBdEhiIOqsSuvR")
_FLAGS_WITH_VALUE = {"-W", "-X"}
MULTIPROCESSING_FORK = "--multiprocessing-fork"


def is_child() -> bool:
    return bool(getattr(sys, "frozen", False)) and CHILD_PATH_VARIABLE in os.environ


def prepare_children() -> None:
    """Called in the frozen task process just before its script runs: its children get
    the same sys.path (the stdlib zip first, then the layers...), and die with it.

    Also drops PyInstaller's LD_LIBRARY_PATH, which the worker's own children do not need
    (its program finds its libraries through DT_RPATH) and which would hand the bundled
    libraries to the host's programs; and, unless TMPDIR is set, points it at `tmp/` in the
    slot: BOINC empties the slot after every task, also one it killed, so what the task
    and multiprocessing (`pymp-*`) leave in a temp dir goes with it."""
    if not getattr(sys, "frozen", False):  # sys.executable is a real python
        return
    os.environ[CHILD_PATH_VARIABLE] = os.pathsep.join(sys.path)
    if "TMPDIR" not in os.environ:
        os.makedirs(SLOT_TEMP_DIR, exist_ok=True)
        os.environ["TMPDIR"] = os.path.abspath(SLOT_TEMP_DIR)
    original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = original
    os.register_at_fork(after_in_child=die_with_parent)


def die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal  # imported here: signal imports enum, 5 ms of every task's start-up

    parent = os.getppid()
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_as_main(path: str) -> None:
    """Run the file `path` as `__main__`, as `runpy.run_path` does for a script, without
    importing runpy's pkgutil (from the stdlib zip: 7 ms of every task's start-up)."""
    with io.open_code(path) as handle:
        code = compile(handle.read(), path, "exec")
    module = types.ModuleType("__main__")
    module.__dict__.update(
        __file__=path, __cached__=None, __loader__=None, __package__="", __spec__=None
    )
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        exec(code, vars(module))
    finally:
        sys.modules["__main__"] = saved_main


def _split_options(argv: list[str]) -> list[str]:
    """Drop python's interpreter options; return the rest (`-c ...`, `-m ...`, script)."""
    at = 0
    while at < len(argv):
        arg = argv[at]
        if arg in _FLAGS_WITH_VALUE:
            at += 2
        elif arg.startswith(("-W", "-X")) or (
            arg.startswith("-") and len(arg) > 1 and set(arg[1:]) <= _FLAGS
        ):
            at += 1
        else:
            break
    return argv[at:]


def _spawn_main(arguments: list[str]) -> None:
    # What multiprocessing.freeze_support() does for a frozen program on Windows.
    from multiprocessing.spawn import spawn_main

    keywords = {}
    for argument in arguments:
        name, _, value = argument.partition("=")
        keywords[name] = None if value == "None" else int(value)
    spawn_main(**keywords)


def run(argv: list[str]) -> int:
    """Act as `python ARGV...`; return the exit status."""
    args = _split_options(argv)
    if not args:
        message = "as sys.executable it runs -c CODE, -m MODULE or a script, no prompt"
        print(f"pymw worker: {message}", file=sys.stderr)
        return 2
    if args[0] == MULTIPROCESSING_FORK:
        _spawn_main(args[1:])
        return 0
    if args[0] == "-c" and len(args) > 1:
        sys.argv = ["-c", *args[2:]]
        sys.path.insert(0, "")
        main = sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, as python
        exec(compile(args[1], "<string>", "exec"), vars(main))
    elif args[0] == "-m" and len(args) > 1:
        sys.argv = [args[1], *args[2:]]
        sys.path.insert(0, os.getcwd())
        import runpy

        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
        run_as_main(args[0])
    return 0


def child_main() -> None:
    """The entry of a child: the parent's paths, death with the parent, then python."""
    stdlib_zip, *rest = os.environ[CHILD_PATH_VARIABLE].split(os.pathsep)
    from pyboinc import runtime

    sys.path[:] = rest
    runtime.add_stdlib_zip(stdlib_zip)
    die_with_parent()  # needs ctypes, from the stdlib zip
    runtime.install_boinc_module()
    os.register_at_fork(after_in_child=die_with_parent)
    sys.exit(run(sys.argv[1:]))
