"""The `boinc` module: BOINC's application API for Python task scripts.

In the frozen worker a script simply does `import boinc`; in a normal Python use
`from pyboinc import boinc_api as boinc`. The calls drop BOINC's `boinc_` prefix::

    import boinc
    boinc.init()
    with open(boinc.resolve_filename("in")) as source: ...
    boinc.fraction_done(0.5)
    boinc.finish(0)           # flushes stdout/stderr, writes boinc_finish_called, exits

Every call that returns a BOINC status raises `BoincError(call, code)` when it is non-zero.
It works outside BOINC too (standalone mode: no `init_data.xml` in the working
directory), which is how it is tested.
"""

import dataclasses
import os
import sys
import time

from pyboinc.boinc_api._binding import Binding, BindingError, BoincError, check

__all__ = [
    "BindingError",
    "BoincError",
    "HostInfo",
    "InitData",
    "Status",
    "begin_critical_section",
    "checkpoint_completed",
    "elapsed_time",
    "end_critical_section",
    "finish",
    "fraction_done",
    "get_app_name",
    "get_fraction_done",
    "get_init_data",
    "get_status",
    "init",
    "is_standalone",
    "need_network",
    "network_done",
    "network_poll",
    "receive_trickle_down",
    "report_app_status",
    "resolve_filename",
    "send_trickle_up",
    "temporary_exit",
    "time_to_checkpoint",
    "upload_file",
    "upload_status",
    "wu_cpu_time",
]

FINISH_FILE = "boinc_finish_called"
_MAX_PATH = 4096
_TRICKLE_BUFFER = 64 * 1024
_initialized = False


def _lib():
    Binding.load()
    return Binding.lib


def _text(raw) -> str:
    return Binding.ffi.string(raw).decode("utf-8", "replace")


def _flush_streams() -> None:
    # boinc_finish and boinc_temporary_exit end the process without running atexit.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


# ------------------------------------------------------------------------- records


@dataclasses.dataclass(frozen=True)
class Status:
    """BOINC_STATUS: what the client asked of the app (polled by the API's timer thread)."""

    no_heartbeat: bool
    suspended: bool
    quit_request: bool
    reread_init_data_file: bool
    abort_request: bool
    working_set_size: float
    max_working_set_size: float
    network_suspended: bool


@dataclasses.dataclass(frozen=True)
class HostInfo:
    p_ncpus: int
    p_vendor: str
    p_model: str
    m_nbytes: float
    os_name: str
    os_version: str


@dataclasses.dataclass(frozen=True)
class InitData:
    """The fields of APP_INIT_DATA (the slot's init_data.xml) a task script may want."""

    major_version: int
    minor_version: int
    release: int
    app_version: int
    app_name: str
    project_dir: str
    boinc_dir: str
    wu_name: str
    result_name: str
    user_name: str
    team_name: str
    userid: int
    teamid: int
    hostid: int
    slot: int
    client_pid: int
    user_total_credit: float
    user_expavg_credit: float
    host_total_credit: float
    host_expavg_credit: float
    resource_share_fraction: float
    starting_elapsed_time: float
    wu_cpu_time: float
    checkpoint_period: float
    rsc_fpops_est: float
    rsc_fpops_bound: float
    rsc_memory_bound: float
    rsc_disk_bound: float
    computation_deadline: float
    fraction_done_start: float
    fraction_done_end: float
    gpu_type: str
    gpu_device_num: int
    gpu_opencl_dev_index: int
    gpu_usage: float
    ncpus: float
    host: HostInfo


# ------------------------------------------------------------------ life cycle


def init() -> None:
    """boinc_init: start the API runtime. Afterwards stderr (fd 2) goes to stderr.txt."""
    global _initialized
    check("init", _lib().boinc_init())
    _initialized = True


def is_standalone() -> bool:
    """True when not run by a BOINC client (no init_data.xml, or init() not called yet)."""
    return not _initialized or bool(_lib().boinc_is_standalone())


def finish(status: int = 0) -> None:
    """boinc_finish: flush, write `boinc_finish_called`, exit with `status`. Never returns.

    Under a client this is BOINC's own boinc_finish (which waits 2 s for its timer thread
    to send the last messages). Standalone, that wait buys nothing and a local run of many
    small tasks pays it per task, so the same visible effects (the stderr line, the finish
    file holding the status, the exit status) are produced here, at once.
    """
    status = int(status)
    _flush_streams()
    if not is_standalone():
        _lib().boinc_finish(status)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} ({os.getpid()}): called boinc_finish({status})\n")
    with open(FINISH_FILE, "w") as finish_file:
        finish_file.write(f"{status}\n")
    _flush_streams()
    os._exit(status)


def temporary_exit(delay: int, reason: str | None = None, is_notice: bool = False) -> None:
    """boinc_temporary_exit: exit now and ask the client to restart the task after `delay` s."""
    lib = _lib()
    reason_c = Binding.ffi.NULL if reason is None else reason.encode("utf-8")
    _flush_streams()
    check("temporary_exit", lib.pyboinc_temporary_exit(int(delay), reason_c, int(is_notice)))


# ------------------------------------------------------------------ progress and time


def fraction_done(fraction: float) -> None:
    check("fraction_done", _lib().boinc_fraction_done(float(fraction)))


def get_fraction_done() -> float:
    return float(_lib().boinc_get_fraction_done())


def time_to_checkpoint() -> bool:
    return bool(_lib().boinc_time_to_checkpoint())


def checkpoint_completed() -> None:
    check("checkpoint_completed", _lib().boinc_checkpoint_completed())


def begin_critical_section() -> None:
    _lib().boinc_begin_critical_section()


def end_critical_section() -> None:
    _lib().boinc_end_critical_section()


def wu_cpu_time() -> float:
    """CPU time of this workunit so far, including earlier episodes."""
    lib = _lib()
    cpu_time = Binding.ffi.new("double*")
    check("wu_cpu_time", lib.pyboinc_wu_cpu_time(cpu_time))
    return float(cpu_time[0])


def elapsed_time() -> float:
    return float(_lib().pyboinc_elapsed_time())


def report_app_status(cpu_time: float, checkpoint_cpu_time: float, fraction: float) -> None:
    lib = _lib()
    code = lib.boinc_report_app_status(float(cpu_time), float(checkpoint_cpu_time), fraction)
    check("report_app_status", code)


def get_status() -> Status:
    lib = _lib()
    raw = Binding.ffi.new("BOINC_STATUS*")
    check("get_status", lib.boinc_get_status(raw))
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


# ------------------------------------------------------------------ files and init data


def resolve_filename(logical_name: str) -> str:
    """boinc_resolve_filename: follow a slot's `<soft_link>` file to the physical path."""
    lib = _lib()
    physical = Binding.ffi.new("char[]", _MAX_PATH)
    code = lib.boinc_resolve_filename(os.fsencode(logical_name), physical, _MAX_PATH)
    check("resolve_filename", code)
    return os.fsdecode(Binding.ffi.string(physical))


def get_init_data() -> InitData:
    """boinc_get_init_data: the slot's init_data.xml as parsed by the API library.

    Before init() the file is parsed on demand, so a script can read it at any time.
    """
    lib = _lib()
    if not _initialized:
        lib.boinc_parse_init_data_file()  # non-zero means no file: fields stay empty
    raw = Binding.ffi.new("struct pyboinc_init_data*")
    check("get_init_data", lib.pyboinc_get_init_data(raw))
    values = {}
    for field in dataclasses.fields(InitData):
        if field.name == "host":
            continue
        value = getattr(raw, field.name)
        values[field.name] = _text(value) if field.type is str else value
    host = HostInfo(
        p_ncpus=raw.host_p_ncpus,
        p_vendor=_text(raw.host_p_vendor),
        p_model=_text(raw.host_p_model),
        m_nbytes=raw.host_m_nbytes,
        os_name=_text(raw.host_os_name),
        os_version=_text(raw.host_os_version),
    )
    return InitData(**values, host=host)


def get_app_name() -> str:
    """The BOINC app's real name from init data ("" when standalone without init data).

    Not in BOINC's C API: argv[0] holds the physical file name (pymw_1.03_<platform>),
    not the app name the project registered.
    """
    return get_init_data().app_name


def upload_file(logical_name: str) -> None:
    """boinc_upload_file: ask the client to upload an output file now (before finishing)."""
    check("upload_file", _lib().pyboinc_upload_file(logical_name.encode("utf-8")))


def upload_status(logical_name: str) -> int:
    """boinc_upload_status: 0 when the upload succeeded, else a BOINC status (ERR_NOT_FOUND...)."""
    return int(_lib().pyboinc_upload_status(logical_name.encode("utf-8")))


# ------------------------------------------------------------------ network and trickles


def need_network() -> None:
    _lib().boinc_need_network()


def network_poll() -> bool:
    """True once the network is available (boinc_network_poll returned 0)."""
    return _lib().boinc_network_poll() == 0


def network_done() -> None:
    _lib().boinc_network_done()


def send_trickle_up(variety: str, text: str) -> None:
    lib = _lib()
    variety_c = Binding.ffi.new("char[]", variety.encode("utf-8"))
    text_c = Binding.ffi.new("char[]", text.encode("utf-8"))
    check("send_trickle_up", lib.boinc_send_trickle_up(variety_c, text_c))


def receive_trickle_down() -> str | None:
    """The next trickle-down message, or None when there is none."""
    lib = _lib()
    buffer = Binding.ffi.new("char[]", _TRICKLE_BUFFER)
    if not lib.boinc_receive_trickle_down(buffer, _TRICKLE_BUFFER):
        return None
    return _text(buffer)
