"""Names and defaults of PyMW's BOINC deployment, in one place."""

from . import assimilator

APP_NAME = "pymw"
APP_FRIENDLY_NAME = "PyMW worker"
# Installed into the project's bin/ and named bare in config.xml: BOINC's
# script_assimilator drops every token after the script name.
ASSIMILATOR_SCRIPT = "pymw_assimilator"
CHECKPOINT_FILE = "checkpoint.json"

# Logical (open) names in the slot: the worker contract's files.
SCRIPT_OPEN_NAME = "pymw_task.py"
INPUT_OPEN_NAME = "in"
# The output's open name is fixed by the standalone assimilator script, which must know it.
OUTPUT_OPEN_NAME = assimilator.OUTPUT_OPEN_NAME

# PyMW's historical set_boinc_args defaults.
DEFAULT_TARGET_NRESULTS = 2
DEFAULT_MIN_QUORUM = 1
DEFAULT_MAX_NBYTES = 65536
DEFAULT_DELAY_BOUND = 86400
DEFAULT_RSC_FPOPS_EST = 1e12
DEFAULT_RSC_FPOPS_BOUND = 1e15
DEFAULT_RSC_MEMORY_BOUND = 5e8
DEFAULT_RSC_DISK_BOUND = 1e9

# The app version of the default workers, which run the host's python3. Lower than
# PyBOINC's 1.03 so that a deployed frozen worker wins on hosts that have both.
DEFAULT_WORKER_VERSION = "1.00"
# What BOINC is told the frozen worker was built against (Debian's libboinc-app 7.20.5);
# with api_version >= 6 the client gives the app its shared-memory channel.
FROZEN_WORKER_API_VERSION = "7.20.5"
DEFAULT_WORKER_PLATFORMS = {
    "x86_64-pc-linux-gnu": "posix",
    "aarch64-unknown-linux-gnu": "posix",
    "x86_64-apple-darwin": "posix",
    "arm64-apple-darwin": "posix",
    "windows_x86_64": "windows",
}

# Daemons the pymw app needs. file_deleter takes no -dont_delete_batches (an unknown
# option makes it exit): it deletes files once their workunit is assimilated.
REQUIRED_DAEMONS = (
    "feeder -d 3",
    "transitioner -d 3",
    "file_deleter -d 3",
    f"sample_trivial_validator -d 3 --app {APP_NAME}",
    f"script_assimilator -d 3 --app {APP_NAME} --script {ASSIMILATOR_SCRIPT}",
)

# Seconds between looks at the task directory for assimilated outputs; BOINC's own
# cycle (client polls, scheduler RPC delays) is tens of seconds.
POLL_INTERVAL_MIN = 0.5
POLL_INTERVAL_MAX = 5.0

# BOINC's workunit error_mask bits (boinc_db_types.h), for readable errors.
WU_ERROR_BITS = {
    1: "could not send",
    2: "too many error results",
    4: "too many success results",
    8: "too many total results",
    16: "cancelled",
    32: "no canonical result",
}
