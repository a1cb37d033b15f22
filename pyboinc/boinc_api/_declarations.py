"""Raw declarations of the BOINC application API, in one place (pyca/cryptography style).

`build_binding.py` assembles these four strings (`sections`) into the one cffi module
`_boinc_cffi`:

- INCLUDES: the C++ headers the generated source includes;
- TYPES: the structs cffi must know (copied from boinc_api.h);
- FUNCTIONS: the C-callable functions, BOINC's own `extern "C"` ones and our shims;
- CUSTOMIZATIONS: the `extern "C"` shims over BOINC's C++-only calls, the C++ source
  `_shims.cpp` beside this file (read when first asked for, see `__getattr__`).

Debian's libboinc-app-dev 7.20.5 is the reference. Its `libboinc_api.a` is an empty stub,
so the module links the shared `libboinc_api.so` and `libboinc.so` and is compiled as C++.
The binding's version stamp is a hash of all the strings: edit them, rebuild the module.
"""

import sys
from pathlib import Path

INCLUDES = """
#include <string>
#include <stdio.h>
#include <string.h>
#include "boinc_api.h"
#include "app_ipc.h"
#include "filesys.h"
"""

TYPES = """
typedef struct BOINC_OPTIONS {
    int normal_thread_priority;
    int main_program;
    int check_heartbeat;
    int handle_process_control;
    int send_status_msgs;
    int direct_process_action;
    int multi_thread;
    int multi_process;
} BOINC_OPTIONS;

typedef struct BOINC_STATUS {
    int no_heartbeat;
    int suspended;
    int quit_request;
    int reread_init_data_file;
    int abort_request;
    double working_set_size;
    double max_working_set_size;
    int network_suspended;
} BOINC_STATUS;

typedef void (*FUNC_PTR)(void);
"""

# BOINC's own C functions (the `extern "C"` part of boinc_api.h, and boinc_resolve_filename
# from filesys.h), in the header's order. Declared there but left out: boinc_get_init_data_p
# (takes the C++ APP_INIT_DATA; pyboinc_init_data_xml serves it), setMacPList/setMacIcon
# (macOS graphics apps), and five calls libboinc_api 7.20.5 declares but does not define
# (boinc_suspend/resume_other_activities, boinc_ops_per_cpu_sec, boinc_ops_cumulative,
# boinc_set_credit_claim): the module refuses those in Python (see UNDEFINED_IN_LIBRARY).
FUNCTIONS = """
int boinc_init(void);
int boinc_finish(int status);
int boinc_parse_init_data_file(void);
int boinc_send_trickle_up(char* variety, char* text);
int boinc_set_min_checkpoint_period(int);
int boinc_checkpoint_completed(void);
int boinc_fraction_done(double);
int boinc_report_app_status(double cpu_time, double checkpoint_cpu_time,
                            double fraction_done);
int boinc_time_to_checkpoint(void);
void boinc_begin_critical_section(void);
void boinc_end_critical_section(void);
void boinc_need_network(void);
int boinc_network_poll(void);
void boinc_network_done(void);
void boinc_network_usage(double sent, double received);
int boinc_is_standalone(void);
int boinc_receive_trickle_down(char* buf, int len);
int boinc_init_options(BOINC_OPTIONS*);
int boinc_get_status(BOINC_STATUS*);
double boinc_get_fraction_done(void);
void boinc_register_timer_callback(FUNC_PTR);
double boinc_worker_thread_cpu_time(void);
int boinc_init_parallel(void);
void boinc_web_graphics_url(char*);
void boinc_remote_desktop_addr(char*);
int boinc_resolve_filename(const char*, char*, int len);

/* _shims.cpp: extern "C" over the C++-only calls */
const char* pyboinc_binding_stamp(void);
int pyboinc_reinit_options(BOINC_OPTIONS* options);
double pyboinc_elapsed_time(void);
int pyboinc_temporary_exit(int delay, const char* reason, int is_notice);
int pyboinc_finish_message(int status, const char* message, int is_notice);
int pyboinc_report_app_status_aux(double cpu_time, double checkpoint_cpu_time,
                                  double fraction_done, int other_pid, double bytes_sent,
                                  double bytes_received);
int pyboinc_upload_file(const char* name);
int pyboinc_upload_status(const char* name);
void pyboinc_msg_prefix(char* buffer, int size);
char* pyboinc_init_data_xml(void);
void pyboinc_free(char* pointer);

/* The timer callback, implemented in Python (cffi's extern "Python"). */
extern "Python" void pyboinc_timer_callback(void);
"""

SHIMS_SOURCE = Path(__file__).with_name("_shims.cpp")


def _customizations() -> str:
    """The shims' C++ text. Read on demand: the frozen worker carries no _shims.cpp and
    skips the stamp check (its module was compiled from this very text in the build)."""
    return SHIMS_SOURCE.read_text(encoding="utf-8")


def __getattr__(name: str) -> str:
    # CUSTOMIZATIONS reads like the other sections (module attribute), but lazily.
    if name == "CUSTOMIZATIONS":
        return _customizations()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def sections() -> dict[str, str]:
    """INCLUDES, TYPES, FUNCTIONS and CUSTOMIZATIONS of every module compiled into
    `_boinc_cffi`, each joined in order (today only BOINC's, this one)."""
    modules = (sys.modules[__name__],)
    names = ("INCLUDES", "TYPES", "FUNCTIONS", "CUSTOMIZATIONS")
    return {name: "".join(getattr(module, name) for module in modules) for name in names}


def binding_stamp() -> str:
    """The version stamp compiled into `_boinc_cffi`, checked when the binding loads."""
    import hashlib

    text = "\0".join(sections().values())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
