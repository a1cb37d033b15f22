"""Raw declarations of the BOINC application API, in one place (pyca/cryptography style).

`build_binding.py` assembles these four strings, and those of the sibling modules named in
`sections` (OpenSSL's, for signed scripts), into the one cffi module `_boinc_cffi`:

- INCLUDES: the C++ headers the generated source includes;
- TYPES: the structs cffi must know (copied from boinc_api.h, plus our C view of init data);
- FUNCTIONS: the C-callable functions, BOINC's own `extern "C"` ones and our shims;
- CUSTOMIZATIONS: the `extern "C"` shims over BOINC's C++-only calls.

Debian's libboinc-app-dev 7.20.5 is the reference. Its `libboinc_api.a` is an empty stub,
so the module links the shared `libboinc_api.so` and `libboinc.so` and is compiled as C++.
The binding's version stamp is a hash of all the strings: edit them, rebuild the module.
"""

import sys

from pyboinc.boinc_api import _evp_declarations

INCLUDES = """
#include <string>
#include <stdio.h>
#include <string.h>
#include "boinc_api.h"
#include "app_ipc.h"
"""

# Our own struct: declared to cffi (TYPES) and defined for the compiler (CUSTOMIZATIONS).
INIT_DATA_STRUCT = """
/* A C view of the fields of APP_INIT_DATA (a C++ class holding std::string and
   std::vector) that a task script may want; filled by pyboinc_get_init_data. */
struct pyboinc_init_data {
    int major_version;
    int minor_version;
    int release;
    int app_version;
    char app_name[256];
    char project_dir[256];
    char boinc_dir[4096];
    char wu_name[256];
    char result_name[256];
    char user_name[256];
    char team_name[256];
    int userid;
    int teamid;
    int hostid;
    int slot;
    int client_pid;
    double user_total_credit;
    double user_expavg_credit;
    double host_total_credit;
    double host_expavg_credit;
    double resource_share_fraction;
    double starting_elapsed_time;
    double wu_cpu_time;
    double checkpoint_period;
    double rsc_fpops_est;
    double rsc_fpops_bound;
    double rsc_memory_bound;
    double rsc_disk_bound;
    double computation_deadline;
    double fraction_done_start;
    double fraction_done_end;
    char gpu_type[64];
    int gpu_device_num;
    int gpu_opencl_dev_index;
    double gpu_usage;
    double ncpus;
    int host_p_ncpus;
    char host_p_vendor[256];
    char host_p_model[256];
    double host_m_nbytes;
    char host_os_name[256];
    char host_os_version[256];
};
"""

TYPES = """
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
"""

TYPES += INIT_DATA_STRUCT

FUNCTIONS = """
int boinc_init(void);
int boinc_finish(int status);
int boinc_parse_init_data_file(void);
int boinc_send_trickle_up(char* variety, char* text);
int boinc_receive_trickle_down(char* buf, int len);
int boinc_checkpoint_completed(void);
int boinc_time_to_checkpoint(void);
int boinc_fraction_done(double);
double boinc_get_fraction_done(void);
int boinc_report_app_status(double cpu_time, double checkpoint_cpu_time,
                            double fraction_done);
void boinc_begin_critical_section(void);
void boinc_end_critical_section(void);
void boinc_need_network(void);
int boinc_network_poll(void);
void boinc_network_done(void);
int boinc_is_standalone(void);
int boinc_get_status(BOINC_STATUS*);
int boinc_resolve_filename(const char*, char*, int len);

/* shims over C++-only calls (CUSTOMIZATIONS) */
int pyboinc_wu_cpu_time(double* cpu_time);
double pyboinc_elapsed_time(void);
int pyboinc_temporary_exit(int delay, const char* reason, int is_notice);
int pyboinc_upload_file(const char* name);
int pyboinc_upload_status(const char* name);
int pyboinc_get_init_data(struct pyboinc_init_data* out);
const char* pyboinc_binding_stamp(void);
"""

# PYBOINC_BINDING_STAMP is defined by build_binding.py before these lines.
CUSTOMIZATIONS = (
    INIT_DATA_STRUCT
    + """
static void pyboinc_copy(char* dest, const char* src, size_t size) {
    snprintf(dest, size, "%s", src);
}
#define PYBOINC_COPY(dest, src) pyboinc_copy(dest, src, sizeof(dest))

extern "C" {

const char* pyboinc_binding_stamp(void) { return PYBOINC_BINDING_STAMP; }

int pyboinc_wu_cpu_time(double* cpu_time) { return boinc_wu_cpu_time(*cpu_time); }

double pyboinc_elapsed_time(void) { return boinc_elapsed_time(); }

int pyboinc_temporary_exit(int delay, const char* reason, int is_notice) {
    return boinc_temporary_exit(delay, reason, is_notice != 0);
}

int pyboinc_upload_file(const char* name) {
    std::string logical_name(name);
    return boinc_upload_file(logical_name);
}

int pyboinc_upload_status(const char* name) {
    std::string logical_name(name);
    return boinc_upload_status(logical_name);
}

int pyboinc_get_init_data(struct pyboinc_init_data* out) {
    APP_INIT_DATA aid;
    int retval = boinc_get_init_data(aid);
    if (retval) return retval;
    memset(out, 0, sizeof(*out));
    out->major_version = aid.major_version;
    out->minor_version = aid.minor_version;
    out->release = aid.release;
    out->app_version = aid.app_version;
    PYBOINC_COPY(out->app_name, aid.app_name);
    PYBOINC_COPY(out->project_dir, aid.project_dir);
    PYBOINC_COPY(out->boinc_dir, aid.boinc_dir);
    PYBOINC_COPY(out->wu_name, aid.wu_name);
    PYBOINC_COPY(out->result_name, aid.result_name);
    PYBOINC_COPY(out->user_name, aid.user_name);
    PYBOINC_COPY(out->team_name, aid.team_name);
    out->userid = aid.userid;
    out->teamid = aid.teamid;
    out->hostid = aid.hostid;
    out->slot = aid.slot;
    out->client_pid = aid.client_pid;
    out->user_total_credit = aid.user_total_credit;
    out->user_expavg_credit = aid.user_expavg_credit;
    out->host_total_credit = aid.host_total_credit;
    out->host_expavg_credit = aid.host_expavg_credit;
    out->resource_share_fraction = aid.resource_share_fraction;
    out->starting_elapsed_time = aid.starting_elapsed_time;
    out->wu_cpu_time = aid.wu_cpu_time;
    out->checkpoint_period = aid.checkpoint_period;
    out->rsc_fpops_est = aid.rsc_fpops_est;
    out->rsc_fpops_bound = aid.rsc_fpops_bound;
    out->rsc_memory_bound = aid.rsc_memory_bound;
    out->rsc_disk_bound = aid.rsc_disk_bound;
    out->computation_deadline = aid.computation_deadline;
    out->fraction_done_start = aid.fraction_done_start;
    out->fraction_done_end = aid.fraction_done_end;
    PYBOINC_COPY(out->gpu_type, aid.gpu_type);
    out->gpu_device_num = aid.gpu_device_num;
    out->gpu_opencl_dev_index = aid.gpu_opencl_dev_index;
    out->gpu_usage = aid.gpu_usage;
    out->ncpus = aid.ncpus;
    out->host_p_ncpus = aid.host_info.p_ncpus;
    PYBOINC_COPY(out->host_p_vendor, aid.host_info.p_vendor);
    PYBOINC_COPY(out->host_p_model, aid.host_info.p_model);
    out->host_m_nbytes = aid.host_info.m_nbytes;
    PYBOINC_COPY(out->host_os_name, aid.host_info.os_name);
    PYBOINC_COPY(out->host_os_version, aid.host_info.os_version);
    return 0;
}

}  /* extern "C" */
"""
)


def sections() -> dict[str, str]:
    """INCLUDES, TYPES, FUNCTIONS and CUSTOMIZATIONS of every module compiled into
    `_boinc_cffi`, each joined in order: BOINC's (this one), then OpenSSL's EVP."""
    modules = (sys.modules[__name__], _evp_declarations)
    names = ("INCLUDES", "TYPES", "FUNCTIONS", "CUSTOMIZATIONS")
    return {name: "".join(getattr(module, name) for module in modules) for name in names}


def binding_stamp() -> str:
    """The version stamp compiled into `_boinc_cffi`, checked when the binding loads."""
    import hashlib

    text = "\0".join(sections().values())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
