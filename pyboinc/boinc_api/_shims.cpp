/* extern "C" shims over the C++-only calls of BOINC's boinc_api.h (libboinc-app-dev 7.20.5).

   cffi can call only C functions; these wrap the calls that take C++ types (std::string,
   references, bool, APP_INIT_DATA). _declarations.py pastes this file into the source of
   the cffi module `_boinc_cffi` (so its text is part of the binding's version stamp), after
   boinc_api.h, app_ipc.h and the PYBOINC_BINDING_STAMP define. */

#include <stdio.h>
#include <stdlib.h>

extern "C" {

const char* pyboinc_binding_stamp(void) { return PYBOINC_BINDING_STAMP; }

/* boinc_init_options_general: the library's own (re)initialisation step without a second
   timer thread. Used when a script asks for other options after the worker's boinc_init. */
int pyboinc_reinit_options(BOINC_OPTIONS* options) {
    return boinc_init_options_general(*options);
}

/* No shim for boinc_wu_cpu_time: it returns the timer thread's sample of the last whole
   second (0.0 for a task's first second); wu_cpu_time() in Python takes the same sum now. */

double pyboinc_elapsed_time(void) { return boinc_elapsed_time(); }

int pyboinc_temporary_exit(int delay, const char* reason, int is_notice) {
    return boinc_temporary_exit(delay, reason, is_notice != 0);
}

int pyboinc_finish_message(int status, const char* message, int is_notice) {
    return boinc_finish_message(status, message, is_notice != 0);
}

int pyboinc_report_app_status_aux(double cpu_time, double checkpoint_cpu_time,
                                  double fraction_done, int other_pid, double bytes_sent,
                                  double bytes_received) {
    return boinc_report_app_status_aux(cpu_time, checkpoint_cpu_time, fraction_done,
                                       other_pid, bytes_sent, bytes_received);
}

int pyboinc_upload_file(const char* name) {
    std::string logical_name(name);
    return boinc_upload_file(logical_name);
}

int pyboinc_upload_status(const char* name) {
    std::string logical_name(name);
    return boinc_upload_status(logical_name);
}

void pyboinc_msg_prefix(char* buffer, int size) { boinc_msg_prefix(buffer, size); }

/* boinc_get_init_data, written out by the library's own write_init_data_file: the XML the
   client writes as init_data.xml, from the library's parsed APP_INIT_DATA, so every field
   (host, proxy, global prefs, app files, project preferences) comes through without a
   C mirror of the C++ classes. Returns a malloc'd string (free it with pyboinc_free), or
   NULL when out of memory. */
char* pyboinc_init_data_xml(void) {
    APP_INIT_DATA aid;
    if (boinc_get_init_data(aid)) return NULL;
#ifdef _WIN32
    /* No open_memstream on Windows: a temporary file, read back. */
    FILE* stream = tmpfile();
    if (!stream) return NULL;
    char* text = NULL;
    if (write_init_data_file(stream, aid) == 0 && fflush(stream) == 0) {
        long size = ftell(stream);
        text = size >= 0 ? (char*)malloc((size_t)size + 1) : NULL;
        if (text) {
            rewind(stream);
            text[fread(text, 1, (size_t)size, stream)] = 0;
        }
    }
    fclose(stream);
    return text;
#else
    /* In memory: the slot may be the only writable place (no /tmp in an empty root). */
    char* text = NULL;
    size_t size = 0;
    FILE* stream = open_memstream(&text, &size);
    if (!stream) return NULL;
    int retval = write_init_data_file(stream, aid);
    fclose(stream);
    if (retval) {
        free(text);
        return NULL;
    }
    return text;
#endif
}

void pyboinc_free(char* pointer) { free(pointer); }

}  /* extern "C" */
