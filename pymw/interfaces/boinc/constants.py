"""Names and defaults of PyMW's BOINC deployment, in one place."""

from . import registry

APP_NAME = "pymw"
APP_FRIENDLY_NAME = "PyMW worker"
# Installed into the project's bin/ and named bare in config.xml: BOINC's
# script_assimilator drops every token after the script name.
ASSIMILATOR_SCRIPT = "pymw_assimilator"
VALIDATOR_SCRIPT = "pymw_validator"
# Copies of registry.py and pyboinc/contract.py the bin/ scripts import, by these names.
REGISTRY_MODULE = "pymw_registry.py"
CONTRACT_MODULE = "pymw_contract.py"
CHECKPOINT_FILE = "checkpoint.json"
# One reference per batch per shared staged file: pymw_files/<file>/pymw_<batch>.
SHARED_FILES_DIR = "pymw_files"
SHARED_FILES_LOCK = ".lock"
# What the web server (another user than the project owner) must read in download/ and
# templates/, whatever the master's umask.
PUBLIC_FILE_MODE = 0o644
PUBLIC_DIR_MODE = 0o755

# PyMW's historical set_boinc_args defaults: every task runs twice, neither copy checked.
DEFAULT_TARGET_NRESULTS = 2
DEFAULT_MIN_QUORUM = 1
DEFAULT_MAX_NBYTES = registry.DEFAULT_MAX_NBYTES
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
# option makes it exit): it deletes files once their workunit is assimilated, which is
# why shared inputs are <no_delete/> and PyMW deletes them (shared_files.py). The
# validator script is named bare for both roles: script_validator then passes it the
# output file(s) alone (validator.py).
REQUIRED_DAEMONS = (
    "feeder -d 3",
    "transitioner -d 3",
    "file_deleter -d 3",
    f"script_validator -d 3 --app {APP_NAME} --init_script {VALIDATOR_SCRIPT} "
    f"--compare_script {VALIDATOR_SCRIPT}",
    f"script_assimilator -d 3 --app {APP_NAME} --script {ASSIMILATOR_SCRIPT}",
)
# Daemons earlier PyMW versions added, removed by setup: two validators would race.
OBSOLETE_DAEMONS = (f"sample_trivial_validator -d 3 --app {APP_NAME}",)
# Daemons run twice from one binary on a project, which need their own log and pid files.
SHARED_BINARY_DAEMONS = ("sample_trivial_validator", "script_validator", "script_assimilator")

# Seconds between looks at the task directory for assimilated outputs; BOINC's own
# cycle (client polls, scheduler RPC delays) is tens of seconds.
POLL_INTERVAL_MIN = 0.5
POLL_INTERVAL_MAX = 5.0

# BOINC's workunit error_mask bits (boinc_db_types.h), for readable errors.
WU_ERROR_BITS = {
    1: "could not send",
    2: "too many error results",
    4: "too many success results (they never agreed)",
    8: "too many total results",
    16: "cancelled",
    32: "no canonical result",
}
