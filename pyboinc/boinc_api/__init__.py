"""The `boinc` module: BOINC's application API (boinc_api.h, 7.20.5) for Python task scripts.

In the frozen worker a script simply does `import boinc`; in a normal Python use
`from pyboinc import boinc_api as boinc`. The calls drop BOINC's `boinc_` prefix::

    import boinc
    boinc.init()                  # idempotent: the worker has already called it
    with open(boinc.resolve_filename("in")) as source: ...
    boinc.fraction_done(0.5)
    boinc.finish(0)               # flushes stdout/stderr, writes boinc_finish_called, exits

Every call that returns a BOINC status raises `BoincError(call, code)` when it is non-zero;
an argument BOINC would take but misread (a fraction of 1.5, an exit status of 300) is a
ValueError naming the range. It works outside BOINC too (standalone mode: no
`init_data.xml` in the working directory), which is how it is tested.

Exit statuses are process exit statuses, 0-255: the client reads the low 8 bits of the
process's status, so `finish(300)` would report 300 in boinc_finish_called and 44 to the
client. It is refused instead.

The records (`InitData`, `Options`, ...) are dataclasses, loaded on first use
(`__getattr__`): dataclasses and the records' classes are 10-20 ms, and the worker imports
this module before every task, also one that never asks for them.
"""

from __future__ import annotations

import os as _os
import sys as _sys
import time as _time

from pyboinc.boinc_api._binding import Binding as _Binding
from pyboinc.boinc_api._binding import BindingError, BoincError
from pyboinc.boinc_api._binding import check as _check

TYPE_CHECKING = False  # not typing's (see compiled_binding); left out of dir()
if TYPE_CHECKING:
    from pyboinc.boinc_api._records import (
        GlobalPrefs,
        HostInfo,
        InitData,
        Options,
        ProxyInfo,
        Status,
    )

__all__ = [
    "MAX_EXIT_STATUS",
    "BindingError",
    "BoincError",
    "GlobalPrefs",
    "HostInfo",
    "InitData",
    "Options",
    "ProxyInfo",
    "Status",
    "begin_critical_section",
    "checkpoint_completed",
    "elapsed_time",
    "end_critical_section",
    "finish",
    "finish_message",
    "fraction_done",
    "get_app_name",
    "get_fraction_done",
    "get_init_data",
    "get_status",
    "init",
    "init_options",
    "init_parallel",
    "is_standalone",
    "msg_prefix",
    "need_network",
    "network_done",
    "network_poll",
    "network_usage",
    "ops_cumulative",
    "ops_per_cpu_sec",
    "parse_init_data_file",
    "receive_trickle_down",
    "register_timer_callback",
    "remote_desktop_addr",
    "report_app_status",
    "report_app_status_aux",
    "resolve_filename",
    "resume_other_activities",
    "send_trickle_up",
    "set_credit_claim",
    "set_min_checkpoint_period",
    "suspend_other_activities",
    "temporary_exit",
    "time_to_checkpoint",
    "upload_file",
    "upload_status",
    "web_graphics_url",
    "worker_thread_cpu_time",
    "wu_cpu_time",
]

#: The largest status `finish` takes: the client sees only a process's low 8 bits.
MAX_EXIT_STATUS = 255

_FINISH_FILE = "boinc_finish_called"  # BOINC_FINISH_CALLED_FILE
_INIT_DATA_FILE = "init_data.xml"  # INIT_DATA_FILE
_MAX_PATH = 4096
_TRICKLE_BUFFER = 64 * 1024
_SHORT_STRING = 256  # char[256] buffers in boinc_api.cpp (graphics URL, message prefix)
_INFINITY = float("inf")  # not math.inf: math is a shared library to load in the worker

_RECORDS = frozenset({"GlobalPrefs", "HostInfo", "InitData", "Options", "ProxyInfo", "Status"})
# What the first init call set: None before it, and _BOINC_DEFAULTS for init()'s
# boinc_init (the options of Options(), which is built only when asked for).
_BOINC_DEFAULTS = object()
_options_in_force: Options | object | None = None
_initial_cpu_time: float | None = None  # APP_INIT_DATA.wu_cpu_time: earlier episodes
_timer_callback = None
_timer_installed = False


def __getattr__(name: str):
    if name not in _RECORDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pyboinc.boinc_api import _records

    record = globals()[name] = getattr(_records, name)
    return record


def __dir__() -> list[str]:
    # The API and the private names, the records included before their first use.
    return sorted({*__all__, *(name for name in globals() if name.startswith("_"))})


def _options() -> Options | None:
    """The options in force (None before the first init call)."""
    if _options_in_force is _BOINC_DEFAULTS:
        from pyboinc.boinc_api._records import Options

        return Options()
    return _options_in_force


def _lib():
    _Binding.load()
    return _Binding.lib


def _ffi():
    _Binding.load()
    return _Binding.ffi


def _text(raw) -> str:
    return _ffi().string(raw).decode("utf-8", "replace")


def _flush_streams() -> None:
    # boinc_finish and boinc_temporary_exit end the process without running atexit.
    for stream in (_sys.stdout, _sys.stderr, _sys.__stdout__, _sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def _number(call: str, name: str, value, low: float, high: float = _INFINITY) -> float:
    """`value` as a float within [low, high], else a ValueError naming the call and range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"boinc.{call}: {name} must be a number, not {type(value).__name__}")
    if not low <= value <= high:  # also refuses NaN
        bounds = f"in [{low:g}, {high:g}]" if high != _INFINITY else f">= {low:g}"
        raise ValueError(f"boinc.{call}: {name} must be {bounds}, not {value!r}")
    return float(value)


def _whole(call: str, name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"boinc.{call}: {name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"boinc.{call}: {name} must be in {low}-{high}, not {value}")
    return value


def _string(call: str, name: str, value, max_bytes: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"boinc.{call}: {name} must be a str, not {type(value).__name__}")
    encoded = value.encode("utf-8")
    if b"\0" in encoded or (max_bytes is not None and len(encoded) >= max_bytes):
        limit = f" under {max_bytes} bytes" if max_bytes else ""
        raise ValueError(f"boinc.{call}: {name} must be text{limit} without NUL")
    return encoded


# ------------------------------------------------------------------ life cycle


def init() -> None:
    """boinc_init: start the API runtime; afterwards stderr (fd 2) goes to stderr.txt.

    Idempotent: the worker calls it before the script runs, and a script that calls it
    again (as BOINC's examples do) changes nothing.
    """
    global _options_in_force
    if _options_in_force is None:  # boinc_init: boinc_init_options(Options()) in C
        _check("init", _lib().boinc_init())
        _options_in_force = _BOINC_DEFAULTS
    elif _options_in_force is not _BOINC_DEFAULTS:
        from pyboinc.boinc_api._records import Options

        init_options(Options())


def init_options(options: Options) -> None:
    """boinc_init_options: init() with other BOINC_OPTIONS (multi-thread or multi-process apps).

    After the worker's own init, the options are applied again by BOINC's re-initialisation
    step (boinc_init_options_general), which keeps the running timer thread. Only
    multi_thread cannot change then: on Unix it forks the process at init.
    """
    global _options_in_force
    from pyboinc.boinc_api._records import Options

    if not isinstance(options, Options):
        raise TypeError(f"boinc.init_options: options must be boinc.Options, not {options!r}")
    in_force = _options()
    if options == in_force:
        return
    lib = _lib()
    raw = _ffi().new("BOINC_OPTIONS*")
    for name, value in vars(options).items():
        setattr(raw, name, int(value))
    if in_force is None:
        _check("init_options", lib.boinc_init_options(raw))
    elif options.multi_thread != in_force.multi_thread:
        raise RuntimeError(
            "boinc.init_options: multi_thread can be chosen only by the first init call "
            "(BOINC forks the process there); the BOINC runtime is already initialised"
        )
    else:
        _check("init_options", lib.pyboinc_reinit_options(raw))
    _options_in_force = options


def init_parallel() -> None:
    """boinc_init_parallel: init_options with multi_thread set (BOINC's shortcut)."""
    global _options_in_force
    from pyboinc.boinc_api._records import Options

    if _options_in_force is None:
        _check("init_parallel", _lib().boinc_init_parallel())
        _options_in_force = Options(multi_thread=True)
    else:
        init_options(Options(multi_thread=True))


def is_standalone() -> bool:
    """True when not run by a BOINC client (no init_data.xml, or init() not called yet)."""
    return _options_in_force is None or bool(_lib().boinc_is_standalone())


def finish(status: int = 0) -> None:
    """boinc_finish: flush, write `boinc_finish_called`, exit with `status` (0-255).

    Never returns. Under a client this is BOINC's own boinc_finish (which waits 2 s for
    its timer thread to send the last messages). Standalone, that wait buys nothing and a
    local run of many small tasks pays it per task, so the same visible effects (the
    stderr line, the finish file holding the status, the exit status) are produced here,
    at once.
    """
    _finish("finish", status, None, False)


def finish_message(status: int, message: str, is_notice: bool = False) -> None:
    """boinc_finish_message: finish(status) with a one-line message the client shows the
    volunteer (as a notice if `is_notice`). Never returns."""
    _string("finish_message", "message", message)
    if "\n" in message or "\r" in message:
        raise ValueError("boinc.finish_message: message must be one line")
    _finish("finish_message", status, message, bool(is_notice))


def _finish(call: str, status: int, message: str | None, is_notice: bool) -> None:
    status = _whole(call, "status", status, 0, MAX_EXIT_STATUS)
    _flush_streams()
    if not is_standalone() and message is None:
        _lib().boinc_finish(status)  # never returns
    if not is_standalone():
        _lib().pyboinc_finish_message(status, message.encode("utf-8"), int(is_notice))
    _sys.stderr.write(f"{msg_prefix()} called boinc_finish({status})\n")
    with open(_FINISH_FILE, "w") as finish_file:  # what boinc_finish_message writes
        finish_file.write(f"{status}\n")
        if message is not None:
            finish_file.write(f"{message}\n{'notice' if is_notice else ''}\n")
    _flush_streams()
    _os._exit(status)


def temporary_exit(delay: int, reason: str | None = None, is_notice: bool = False) -> None:
    """boinc_temporary_exit: exit now; the client restarts the task after `delay` s."""
    delay = _whole("temporary_exit", "delay", delay, 0, 2**31 - 1)
    reason_c = _ffi().NULL
    if reason is not None:
        reason_c = _string("temporary_exit", "reason", reason)
    lib = _lib()
    _flush_streams()
    _check("temporary_exit", lib.pyboinc_temporary_exit(delay, reason_c, int(is_notice)))


# ------------------------------------------------------------------ progress and time


def fraction_done(fraction: float) -> None:
    """boinc_fraction_done: how far the task is, 0 to 1 (the client shows it)."""
    value = _number("fraction_done", "fraction", fraction, 0.0, 1.0)
    _check("fraction_done", _lib().boinc_fraction_done(value))


def get_fraction_done() -> float:
    """The last fraction_done value; -1.0 before any."""
    return float(_lib().boinc_get_fraction_done())


def time_to_checkpoint() -> bool:
    """True when the client wants a checkpoint now (it then begins a critical section,
    which checkpoint_completed() ends)."""
    return bool(_lib().boinc_time_to_checkpoint())


def checkpoint_completed() -> None:
    _check("checkpoint_completed", _lib().boinc_checkpoint_completed())


def set_min_checkpoint_period(seconds: int) -> None:
    """boinc_set_min_checkpoint_period: checkpoint at most every `seconds` (the volunteer's
    own period wins when longer)."""
    seconds = _whole("set_min_checkpoint_period", "seconds", seconds, 0, 2**31 - 1)
    _check("set_min_checkpoint_period", _lib().boinc_set_min_checkpoint_period(seconds))


def begin_critical_section() -> None:
    """No suspend, quit or abort until end_critical_section()."""
    _lib().boinc_begin_critical_section()


def end_critical_section() -> None:
    _lib().boinc_end_critical_section()


def wu_cpu_time() -> float:
    """CPU time of this workunit so far, earlier episodes included, as of now.

    The same sum BOINC's timer thread reports (init data's wu_cpu_time plus this
    process's CPU time), taken at the call: BOINC's own boinc_wu_cpu_time returns the
    timer's sample of the last whole second, so 0.0 for a task's first second.
    """
    global _initial_cpu_time
    if _initial_cpu_time is None:
        _initial_cpu_time = get_init_data().wu_cpu_time
    return _initial_cpu_time + _time.process_time()


def elapsed_time() -> float:
    """boinc_elapsed_time: seconds this episode has run since init, not counting suspension."""
    return float(_lib().pyboinc_elapsed_time())


def worker_thread_cpu_time() -> float:
    """boinc_worker_thread_cpu_time: the process's CPU time at the timer's last sample."""
    return float(_lib().boinc_worker_thread_cpu_time())


def report_app_status(cpu_time: float, checkpoint_cpu_time: float, fraction: float) -> None:
    """boinc_report_app_status: tell the client the CPU times and fraction done yourself
    (for apps whose work runs elsewhere, e.g. wrappers)."""
    report_app_status_aux(cpu_time, checkpoint_cpu_time, fraction)


def report_app_status_aux(
    cpu_time: float,
    checkpoint_cpu_time: float,
    fraction: float,
    other_pid: int = 0,
    bytes_sent: float = 0.0,
    bytes_received: float = 0.0,
) -> None:
    """boinc_report_app_status_aux: report_app_status plus the pid of a process doing the
    work (the client then counts its memory) and network bytes."""
    call = "report_app_status_aux"
    code = _lib().pyboinc_report_app_status_aux(
        _number(call, "cpu_time", cpu_time, 0.0),
        _number(call, "checkpoint_cpu_time", checkpoint_cpu_time, 0.0),
        _number(call, "fraction", fraction, 0.0, 1.0),
        _whole(call, "other_pid", other_pid, 0, 2**31 - 1),
        _number(call, "bytes_sent", bytes_sent, 0.0),
        _number(call, "bytes_received", bytes_received, 0.0),
    )
    _check(call, code)


def register_timer_callback(callback) -> None:
    """boinc_register_timer_callback: call `callback()` once a second from BOINC's timer
    thread (None stops it). Keep it short; an exception in it is printed to stderr."""
    global _timer_callback, _timer_installed
    if callback is not None and not callable(callback):
        raise TypeError(f"boinc.register_timer_callback: {callback!r} is not callable")
    lib = _lib()
    if not _timer_installed:  # the extern "Python" body, attached once per process
        _ffi().def_extern(name="pyboinc_timer_callback")(_on_timer)
        _timer_installed = True
    _timer_callback = callback
    target = _ffi().NULL if callback is None else lib.pyboinc_timer_callback
    lib.boinc_register_timer_callback(target)


def _on_timer() -> None:
    if _timer_callback is not None:
        _timer_callback()


def get_status() -> Status:
    from pyboinc.boinc_api._records import Status

    lib = _lib()
    raw = _ffi().new("BOINC_STATUS*")
    _check("get_status", lib.boinc_get_status(raw))
    return Status(
        no_heartbeat=bool(raw.no_heartbeat),
        suspended=bool(raw.suspended),
        quit_request=bool(raw.quit_request),
        reread_init_data_file=bool(raw.reread_init_data_file),
        abort_request=bool(raw.abort_request),
        working_set_size=float(raw.working_set_size),
        max_working_set_size=float(raw.max_working_set_size),
        network_suspended=bool(raw.network_suspended),
    )


def msg_prefix() -> str:
    """boinc_msg_prefix: "HH:MM:SS (pid):", how BOINC starts its lines in stderr.txt."""
    buffer = _ffi().new("char[]", _SHORT_STRING)
    _lib().pyboinc_msg_prefix(buffer, _SHORT_STRING)
    return _text(buffer)


# ------------------------------------------------------------------ files and init data


def resolve_filename(logical_name: str) -> str:
    """boinc_resolve_filename: follow a slot's `<soft_link>` file to the physical path."""
    name = _string("resolve_filename", "logical_name", logical_name)
    physical = _ffi().new("char[]", _MAX_PATH)
    _check("resolve_filename", _lib().boinc_resolve_filename(name, physical, _MAX_PATH))
    return _os.fsdecode(_ffi().string(physical))


def parse_init_data_file() -> None:
    """boinc_parse_init_data_file: read init_data.xml again (when get_status() says
    reread_init_data_file). BoincError when there is none or it does not parse."""
    _check("parse_init_data_file", _lib().boinc_parse_init_data_file())


def get_init_data() -> InitData:
    """boinc_get_init_data: the slot's init_data.xml as the API library holds it.

    Before init() the file is parsed on demand, so a script can read it at any time. The
    few fields the library does not keep (app_files, the wrapper's priority settings) are
    read from the client's file itself.
    """
    lib = _lib()
    if _options_in_force is None:
        lib.boinc_parse_init_data_file()  # non-zero means no file: fields stay default
    raw = lib.pyboinc_init_data_xml()
    if raw == _ffi().NULL:
        raise MemoryError("boinc.get_init_data: no memory for the init data")
    try:
        library_xml = _text(raw)
    finally:
        lib.pyboinc_free(raw)
    try:
        with open(_INIT_DATA_FILE, encoding="utf-8", errors="replace") as client_file:
            client_xml = client_file.read()
    except OSError:
        client_xml = None
    from pyboinc.boinc_api._records import parse_init_data

    return parse_init_data(library_xml, client_xml)


def get_app_name() -> str:
    """The BOINC app's real name from init data ("" when standalone without init data).

    Not in BOINC's C API: argv[0] holds the physical file name (pymw_1.03_<platform>),
    not the app name the project registered.
    """
    return get_init_data().app_name


def upload_file(logical_name: str) -> None:
    """boinc_upload_file: ask the client to upload an output file now (before finishing)."""
    name = _string("upload_file", "logical_name", logical_name)
    _check("upload_file", _lib().pyboinc_upload_file(name))


def upload_status(logical_name: str) -> int:
    """boinc_upload_status: 0 when the upload succeeded, else a BOINC status
    (ERR_NOT_FOUND, -161, until the client reports on it)."""
    name = _string("upload_status", "logical_name", logical_name)
    return int(_lib().pyboinc_upload_status(name))


# ------------------------------------------------------------------ network and trickles


def need_network() -> None:
    _lib().boinc_need_network()


def network_poll() -> bool:
    """True once the network is available (boinc_network_poll returned 0)."""
    return _lib().boinc_network_poll() == 0


def network_done() -> None:
    _lib().boinc_network_done()


def network_usage(sent: float, received: float) -> None:
    """boinc_network_usage: bytes this task sent and received (the client counts them)."""
    sent = _number("network_usage", "sent", sent, 0.0)
    received = _number("network_usage", "received", received, 0.0)
    _lib().boinc_network_usage(sent, received)


def send_trickle_up(variety: str, text: str) -> None:
    """boinc_send_trickle_up: a message to the project's server while the task runs."""
    variety_c = _ffi().new("char[]", _string("send_trickle_up", "variety", variety))
    text_c = _ffi().new("char[]", _string("send_trickle_up", "text", text))
    _check("send_trickle_up", _lib().boinc_send_trickle_up(variety_c, text_c))


def receive_trickle_down() -> str | None:
    """The name of the next trickle-down file in the slot (read it, then delete it), or
    None when there is none."""
    buffer = _ffi().new("char[]", _TRICKLE_BUFFER)
    if not _lib().boinc_receive_trickle_down(buffer, _TRICKLE_BUFFER):
        return None
    return _text(buffer)


# ------------------------------------------------------------------ graphics


def web_graphics_url(url: str) -> None:
    """boinc_web_graphics_url: where the volunteer's manager shows this task's graphics."""
    url_c = _ffi().new("char[]", _string("web_graphics_url", "url", url, _SHORT_STRING))
    _lib().boinc_web_graphics_url(url_c)


def remote_desktop_addr(address: str) -> None:
    """boinc_remote_desktop_addr: the task's remote desktop (VM apps), host:port."""
    value = _string("remote_desktop_addr", "address", address, _SHORT_STRING)
    _lib().boinc_remote_desktop_addr(_ffi().new("char[]", value))


# ------------------------------------------------- declared in boinc_api.h, not in the library


def _not_in_library(call: str) -> None:
    raise NotImplementedError(
        f"boinc.{call}: boinc_api.h 7.20.5 declares boinc_{call}, but libboinc_api 7.20.5 "
        "does not define it (BOINC dropped it: clients ignore credit claims and no longer "
        "suspend other activities); remove the call"
    )


def suspend_other_activities() -> None:
    _not_in_library("suspend_other_activities")


def resume_other_activities() -> None:
    _not_in_library("resume_other_activities")


def ops_per_cpu_sec(fp: float, integer: float) -> None:
    _not_in_library("ops_per_cpu_sec")


def ops_cumulative(fp: float, integer: float) -> None:
    _not_in_library("ops_cumulative")


def set_credit_claim(credit: float) -> None:
    _not_in_library("set_credit_claim")
