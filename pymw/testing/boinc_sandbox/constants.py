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

#: Seconds an idle feeder, transitioner, validator or assimilator sleeps between passes.
#: Real ones sleep 5 s too, but a sandbox job passes four of them in turn, so they
#: stay short here to keep tests quick; their order of work is the real one either way.
DAEMON_SLEEP_SECONDS = 1.0
#: The file_deleter's idle sleep: BOINC's default `--sleep_interval`. Kept real
#: because it decides a race a user meets (an input deleted before or after the next
#: batch stages it); tests that need the losing order force it, not wait for it.
FILE_DELETER_SLEEP_SECONDS = 5.0
#: config.xml values make_project writes (the real project's `config.xml` had these,
#: and no <next_rpc_delay>: an idle client asks again only after 10 min to 24 h).
MIN_SENDWORK_INTERVAL_SECONDS = 6
DAILY_RESULT_QUOTA = 500
MAX_WUS_TO_SEND = 50
#: Seconds a client is told to wait when the scheduler cannot open the database
#: (sched_config's default maintenance_delay).
MAINTENANCE_DELAY_SECONDS = 3600
#: A validator's transient error (script exit 3) retries the workunit this much later
#: (validator.cpp's DELAYED transition).
VALIDATE_RETRY_SECONDS = 6 * 3600
#: The web side's own system user when the sandbox is started as root (Apache's
#: www-data on Debian); made with useradd if it is missing.
WEB_USER = "boincweb"
#: The directory holding the SQLite file: both the project owner and the web user
#: write it (they reach MySQL over a socket on a real server).
DB_DIR = "db"
#: Present while the database "server" is up: `Sandbox.database_down()` removes it,
#: and every process then fails to connect, as with MySQL stopped.
DB_UP_FILE = "mysqld_running"
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
    NO_CHECK = 3
    INCONCLUSIVE = 4
    TOO_LATE = 5


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


#: BOINC's VAL_RESULT_TRANSIENT_ERROR: a validator script's "try again later" status.
VAL_RESULT_TRANSIENT_ERROR = 3
