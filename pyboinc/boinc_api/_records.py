"""The typed records of the `boinc` module: BOINC_OPTIONS, BOINC_STATUS and APP_INIT_DATA.

APP_INIT_DATA is a C++ class (std::string, std::vector, nested classes), so it reaches
Python as the XML the library writes from it (`write_init_data_file`, the very function
the client uses to write a slot's init_data.xml). Field names are that XML's tag names,
which BOINC documents, and each field's type says how its text is read.
"""

import dataclasses

TYPE_CHECKING = False  # not typing's: importing typing is 5 ms of a task's start-up
if TYPE_CHECKING:  # imported where used: the worker imports this before its stdlib zip
    from xml.etree.ElementTree import Element

# Tags of init_data.xml that libboinc_api 7.20.5 skips when it parses the file (and so
# cannot give back): the app version's files, the wrapper's priority settings, and
# whether the volunteer's global_prefs_override.xml is in force.
UNPARSED_BY_LIBRARY = (
    "app_file",
    "no_priority_change",
    "process_priority",
    "process_priority_special",
    "override_file_present",
)


def _tagged(tag: str, default, **options):
    """A field whose init_data.xml tag is not its APP_INIT_DATA member name."""
    return dataclasses.field(default=default, metadata={"tag": tag}, **options)


@dataclasses.dataclass(frozen=True)
class Options:
    """BOINC_OPTIONS for `init_options`; the defaults are boinc_init()'s.

    multi_thread: the app runs threads (Windows: suspend them all). On Unix BOINC forks at
    init: the parent relays the client's suspend/quit to the child, which runs the task.
    multi_process: the app starts processes; BOINC suspends and kills them with it.
    """

    normal_thread_priority: bool = False
    main_program: bool = True
    check_heartbeat: bool = True
    handle_process_control: bool = True
    send_status_msgs: bool = True
    direct_process_action: bool = True
    multi_thread: bool = False
    multi_process: bool = False


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
    """HOST_INFO: the volunteer's host as the client measured it."""

    timezone: int = 0
    domain_name: str = ""
    serialnum: str = ""
    ip_addr: str = ""
    host_cpid: str = ""
    p_ncpus: int = 0
    p_vendor: str = ""
    p_model: str = ""
    p_features: str = ""
    p_fpops: float = 0.0
    p_iops: float = 0.0
    p_membw: float = 0.0
    p_calculated: float = 0.0
    p_vm_extensions_disabled: bool = False
    m_nbytes: float = 0.0
    m_cache: float = 0.0
    m_swap: float = 0.0
    d_total: float = 0.0
    d_free: float = 0.0
    os_name: str = ""
    os_version: str = ""
    n_usable_coprocs: int = 0
    wsl_available: bool = False
    product_name: str = ""
    mac_address: str = ""
    virtualbox_version: str = ""
    coprocs: str = ""  # the <coprocs> element's XML (GPUs: CUDA, OpenCL, ...)


@dataclasses.dataclass(frozen=True)
class ProxyInfo:
    """PROXY_INFO: the volunteer's proxy settings, for an app that uses the network."""

    use_http_proxy: bool = False
    use_socks_proxy: bool = False
    use_http_auth: bool = False
    socks_server_name: str = ""
    socks_server_port: int = 0
    http_server_name: str = ""
    http_server_port: int = 0
    socks5_user_name: str = ""
    socks5_user_passwd: str = dataclasses.field(default="", repr=False)
    socks5_remote_dns: bool = False
    http_user_name: str = ""
    http_user_passwd: str = dataclasses.field(default="", repr=False)
    noproxy_hosts: str = _tagged("no_proxy", "")
    no_autodetect: bool = False


@dataclasses.dataclass(frozen=True)
class GlobalPrefs:
    """GLOBAL_PREFS: the volunteer's computing preferences in force, named as in
    global_prefs.xml (percentages where the C++ class keeps fractions)."""

    source_project: str = ""
    mod_time: float = 0.0
    battery_charge_min_pct: float = 0.0
    battery_max_temperature: float = 0.0
    run_on_batteries: bool = False
    run_if_user_active: bool = False
    run_gpu_if_user_active: bool = False
    suspend_if_no_recent_input: float = 0.0
    suspend_cpu_usage: float = 0.0
    start_hour: float = 0.0
    end_hour: float = 0.0
    net_start_hour: float = 0.0
    net_end_hour: float = 0.0
    leave_apps_in_memory: bool = False
    confirm_before_connecting: bool = False
    hangup_if_dialed: bool = False
    dont_verify_images: bool = False
    work_buf_min_days: float = 0.0
    work_buf_additional_days: float = 0.0
    max_ncpus_pct: float = 0.0
    cpu_scheduling_period_minutes: float = 0.0
    disk_interval: float = 0.0
    disk_max_used_gb: float = 0.0
    disk_max_used_pct: float = 0.0
    disk_min_free_gb: float = 0.0
    vm_max_used_pct: float = 0.0
    ram_max_used_busy_pct: float = 0.0
    ram_max_used_idle_pct: float = 0.0
    idle_time_to_run: float = 0.0
    max_bytes_sec_up: float = 0.0
    max_bytes_sec_down: float = 0.0
    cpu_usage_limit: float = 0.0
    daily_xfer_limit_mb: float = 0.0
    daily_xfer_period_days: int = 0
    override_file_present: bool = False
    network_wifi_only: bool = False


@dataclasses.dataclass(frozen=True)
class InitData:
    """APP_INIT_DATA: the slot's init_data.xml, every field the client fills.

    Standalone (no init_data.xml) the values are the library's defaults: empty names,
    zeros, checkpoint_period 300.
    """

    major_version: int = 0
    minor_version: int = 0
    release: int = 0
    app_version: int = 0
    app_name: str = ""
    symstore: str = ""
    acct_mgr_url: str = ""
    project_preferences: str = ""  # the project's <project_preferences> element, as XML
    userid: int = 0
    teamid: int = 0
    hostid: int = 0
    user_name: str = ""
    team_name: str = ""
    project_dir: str = ""
    boinc_dir: str = ""
    wu_name: str = ""
    result_name: str = ""
    authenticator: str = dataclasses.field(default="", repr=False)  # the volunteer's key
    slot: int = 0
    client_pid: int = 0
    wu_cpu_time: float = 0.0
    starting_elapsed_time: float = 0.0
    using_sandbox: bool = False
    vm_extensions_disabled: bool = False
    user_total_credit: float = 0.0
    user_expavg_credit: float = 0.0
    host_total_credit: float = 0.0
    host_expavg_credit: float = 0.0
    resource_share_fraction: float = 0.0
    checkpoint_period: float = 0.0
    fraction_done_start: float = 0.0
    fraction_done_end: float = 0.0
    gpu_type: str = ""
    gpu_device_num: int = -1
    gpu_opencl_dev_index: int = -1
    gpu_usage: float = 0.0
    ncpus: float = 0.0
    rsc_fpops_est: float = 0.0
    rsc_fpops_bound: float = 0.0
    rsc_memory_bound: float = 0.0
    rsc_disk_bound: float = 0.0
    computation_deadline: float = 0.0
    vbox_window: bool = False
    no_priority_change: bool = False
    process_priority: int = -1
    process_priority_special: int = -1
    app_files: tuple[str, ...] = _tagged("app_file", ())  # the app version's files
    host_info: HostInfo = HostInfo()
    proxy_info: ProxyInfo = ProxyInfo()
    global_prefs: GlobalPrefs = dataclasses.field(
        default=GlobalPrefs(), metadata={"tag": "global_preferences"}
    )

    @property
    def host(self) -> HostInfo:
        """Short for host_info (the name of earlier PyBOINC releases)."""
        return self.host_info


def _text(element: "Element") -> str:
    """A field's text; for an element holding XML (project_preferences, coprocs), that
    XML. Stripped, as BOINC's own parser strips."""
    from xml.etree import ElementTree

    inner = (element.text or "") + "".join(
        ElementTree.tostring(child, encoding="unicode") for child in element
    )
    return inner.strip()


def _value(kind: type, element: "Element"):
    text = _text(element)
    if kind is bool:  # BOINC writes <flag/>, <flag>1</flag> or <flag>0</flag>
        return text != "0"
    if kind is int:
        return int(text or 0)
    if kind is float:
        return float(text or 0)
    return text


def from_xml(record_type: type, element: "Element", client: "Element"):
    """`record_type` from the children of `element` named like its fields. The fields in
    UNPARSED_BY_LIBRARY come from `client` (the client's own file); absent ones keep their
    defaults."""
    values = {}
    for field in dataclasses.fields(record_type):
        tag = field.metadata.get("tag", field.name)
        children = (client if tag in UNPARSED_BY_LIBRARY else element).findall(tag)
        if not children:
            continue
        if field.type == tuple[str, ...]:
            values[field.name] = tuple(_text(child) for child in children)
        elif dataclasses.is_dataclass(field.type):
            client_part = client.find(tag)
            if client_part is None:
                client_part = client.makeelement(tag, {})
            values[field.name] = from_xml(field.type, children[0], client_part)
        else:
            values[field.name] = _value(field.type, children[0])
    return record_type(**values)


def parse_init_data(library_xml: str, client_xml: str | None) -> InitData:
    """InitData from the library's XML, plus what the library drops from the client's file."""
    from xml.etree import ElementTree

    client = ElementTree.fromstring(client_xml) if client_xml else ElementTree.Element("none")
    return from_xml(InitData, ElementTree.fromstring(library_xml), client)
