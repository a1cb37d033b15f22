"""Every number and name the sandbox shares with real BOINC, in one place.

Values are those of BOINC server release 1.6.2 (BOINC 8.3) and of the Debian client
7.20.5 it was checked against, so that a change in BOINC means a change here only.
"""

from enum import IntEnum

#: The only platform the Debian client on this machine reports.
PLATFORM = "x86_64-pc-linux-gnu"
#: `uldl_dir_fanout` of a project made by make_project.
FANOUT = 1024
#: The client refuses code-signing keys above this size (R_RSA_PUBLIC_KEY holds 128 bytes).
KEY_BITS = 1024
KEY_EXPONENT = 65537
MAX_RSA_MODULUS_LEN = 128
#: What a 1.6.2 scheduler says it is.
SCHEDULER_VERSION = 803
#: Uploads of this size or more start with <get_file_size> (client behaviour).
UPLOAD_PROBE_BYTES = 8 * 1024

#: SQLite file that stands in for the project's MySQL database.
DB_FILE = "sandbox_db.sqlite"
#: The project's "stop switches", as in a real project directory.
STOP_DAEMONS_FILE = "stop_daemons"
STOP_SCHED_FILE = "stop_sched"
#: Pid and log file of the HTTP side (Apache's role), kept with the daemons' ones.
HTTPD_NAME = "httpd"
#: Where the sandbox CLI keeps its BOINC clients' data directories.
CLIENTS_DIR = "clients"

#: Seconds an idle daemon sleeps between passes (real daemons: about 5 s; shorter here
#: so that a test's job moves through the server quickly).
DAEMON_SLEEP_SECONDS = 1.0
#: Clients are asked to contact the scheduler at least this often (config.xml
#: <next_rpc_delay>), so that a long-running client notices new work.
NEXT_RPC_DELAY_SECONDS = 10
#: Defaults of create_work for fields not given in the template or on the command line.
CREATE_WORK_DEFAULTS: dict[str, float] = {
    "rsc_fpops_est": 3600e9,
    "rsc_fpops_bound": 86400e9,
    "rsc_memory_bound": 5e8,
    "rsc_disk_bound": 1e9,
    "delay_bound": 7 * 86400,
    "min_quorum": 1,
    "target_nresults": 1,
    "max_error_results": 3,
    "max_total_results": 10,
    "max_success_results": 6,
    "priority": 0,
}
RSC_FIELDS = ("rsc_fpops_est", "rsc_fpops_bound", "rsc_memory_bound", "rsc_disk_bound")


class ServerState(IntEnum):
    """RESULT.server_state."""

    INACTIVE = 1
    UNSENT = 2
    IN_PROGRESS = 4
    OVER = 5


class Outcome(IntEnum):
    """RESULT.outcome."""

    INIT = 0
    SUCCESS = 1
    COULDNT_SEND = 2
    CLIENT_ERROR = 3
    NO_REPLY = 4
    DIDNT_NEED = 5
    VALIDATE_ERROR = 6


class ValidateState(IntEnum):
    """RESULT.validate_state."""

    INIT = 0
    VALID = 1
    INVALID = 2


class FileDeleteState(IntEnum):
    """WORKUNIT/RESULT.file_delete_state."""

    INIT = 0
    READY = 1
    DONE = 2


class AssimilateState(IntEnum):
    """WORKUNIT.assimilate_state."""

    INIT = 0
    READY = 1
    DONE = 2


class WuError(IntEnum):
    """Bits of WORKUNIT.error_mask."""

    COULDNT_SEND_RESULT = 1
    TOO_MANY_ERROR_RESULTS = 2
    TOO_MANY_SUCCESS_RESULTS = 4
    TOO_MANY_TOTAL_RESULTS = 8
    CANCELLED = 16
    NO_CANONICAL_RESULT = 32


class ClientState(IntEnum):
    """<state> of a result reported by the client."""

    COMPUTE_ERROR = 3
    FILES_UPLOADED = 5


class BatchState(IntEnum):
    """BATCH.state (html/inc/submit_db.inc), as query_batch reports it."""

    INIT = 0
    IN_PROGRESS = 1
    COMPLETE = 2
    ABORTED = 3
    RETIRED = 4


#: What real BOINC's project_flops() gives a project without credit (no host ever got
#: any in the sandbox): estimate_batch divides a batch's FLOPs by it.
PROJECT_FLOPS_WITHOUT_CREDIT = 1e9
