"""Every call of the `boinc` module in the frozen worker under the real Debian
boinc-client (slow: about 105 s, plus the session's worker build if no other test made it).

One workunit on a sandbox project: its app is the frozen worker (behind a small shell
wrapper naming the script and the stdlib zip) running a script that calls each function,
and reports what it saw as one JSON line in stderr.txt, which the client sends back as the
result's stderr_out. The first episode ends with temporary_exit; the client restarts it.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
from pathlib import Path

import pytest

from pymw.testing.boinc_sandbox import Sandbox, reachable_temp_dir
from pymw.testing.boinc_sandbox.constants import PLATFORM
from pymw.testing.boinc_sandbox.processes import wait_until

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPO_ROOT / "tests" / "data" / "boinc_reference"
APP = "apicheck"
EXECUTABLE = f"{APP}_1.0_{PLATFORM}"
REPORT_MARK = "PYBOINC-API-REPORT "
#: api_version >= 6: the client gives the app its shared memory (boinc_mmap_file).
VERSION_XML = f"""<version>
    <file><physical_name>{EXECUTABLE}</physical_name><main_program/></file>
    <api_version>7.20.5</api_version>
</version>
"""

TASK_SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, os, sys, time
    import boinc

    report = {}

    def record(name, call):
        try:
            report[name] = call()
        except (ValueError, RuntimeError, NotImplementedError, boinc.BoincError) as error:
            report[name] = f"{type(error).__name__}: {error}"

    def retry(call):
        # The client empties the app-status channel about once a second, and the app's own
        # timer thread refills it each second: on a busy host the free moment in between
        # can be short, so look often, and long enough.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                return call()
            except boinc.BoincError:
                time.sleep(0.01)
        return call()

    boinc.init()  # the runtime has called it already: a no-op
    if not os.path.exists("episode_1_done"):
        open("episode_1_done", "w").close()
        print("episode 1 ends with temporary_exit", file=sys.stderr, flush=True)
        boinc.temporary_exit(1, "pymw test: back in a second")
        print("temporary_exit returned", file=sys.stderr, flush=True)
    report["standalone"] = boinc.is_standalone()
    record("init_options", lambda: boinc.init_options(boinc.Options(multi_process=True)))
    record("init_parallel", boinc.init_parallel)
    data = boinc.get_init_data()
    report["app_name"] = boinc.get_app_name()
    report["init_data"] = {
        "wu_name": data.wu_name,
        "slot_dir_ok": os.path.isdir(os.path.join(data.boinc_dir, "slots", str(data.slot))),
        "client_pid": data.client_pid,
        "p_ncpus": data.host_info.p_ncpus,
        "os_name": data.host_info.os_name,
        "app_files": list(data.app_files),
        "suspend_cpu_usage": data.global_prefs.suspend_cpu_usage,
        "override_file_present": data.global_prefs.override_file_present,
        "http_server_port": data.proxy_info.http_server_port,
        "checkpoint_period": data.checkpoint_period,
        "project_dir_ok": os.path.isdir(data.project_dir),
    }
    record("parse_init_data_file", boinc.parse_init_data_file)
    report["resolve_out"] = boinc.resolve_filename("out")
    record("fraction_out_of_range", lambda: boinc.fraction_done(1.5))
    boinc.fraction_done(0.25)
    report["fraction"] = boinc.get_fraction_done()
    boinc.set_min_checkpoint_period(1)
    report["time_to_checkpoint"] = boinc.time_to_checkpoint()
    boinc.checkpoint_completed()
    boinc.begin_critical_section()
    boinc.end_critical_section()
    ticks = []
    boinc.register_timer_callback(lambda: ticks.append(1))
    start = time.process_time()
    while time.process_time() - start < 0.4:
        pass
    time.sleep(3)
    boinc.register_timer_callback(None)
    report["ticks"] = len(ticks)
    report["wu_cpu_time"] = boinc.wu_cpu_time()
    report["elapsed_time"] = boinc.elapsed_time()
    report["worker_thread_cpu_time"] = boinc.worker_thread_cpu_time()
    retry(lambda: boinc.report_app_status(report["wu_cpu_time"], 0.0, 0.5))
    retry(lambda: boinc.report_app_status_aux(report["wu_cpu_time"], 0.0, 0.6, 0, 10.0, 20.0))
    report["status"] = dataclasses.asdict(boinc.get_status())
    report["msg_prefix"] = boinc.msg_prefix()
    boinc.need_network()
    report["network_poll_at_once"] = boinc.network_poll()  # False until the client says
    deadline = time.monotonic() + 30
    while not boinc.network_poll() and time.monotonic() < deadline:
        time.sleep(0.2)
    report["network_poll"] = boinc.network_poll()
    boinc.network_done()
    boinc.network_usage(10.0, 20.0)
    boinc.send_trickle_up("pymw_check", "<ok>1</ok>")
    report["trickle_down"] = boinc.receive_trickle_down()
    boinc.web_graphics_url("http://127.0.0.1/graphics")
    boinc.remote_desktop_addr("127.0.0.1:5900")
    for name in ("suspend_other_activities", "resume_other_activities"):
        record(name, getattr(boinc, name))
    record("ops_per_cpu_sec", lambda: boinc.ops_per_cpu_sec(1e9, 1e9))
    record("ops_cumulative", lambda: boinc.ops_cumulative(1e12, 1e12))
    record("set_credit_claim", lambda: boinc.set_credit_claim(1.0))
    with open(sys.argv[2], "w") as out:
        out.write("done\\n")
    boinc.upload_file("out")
    deadline = time.monotonic() + 30
    while boinc.upload_status("out") != 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    report["upload_status"] = boinc.upload_status("out")
    print("PYBOINC-API-REPORT " + json.dumps(report), file=sys.stderr, flush=True)
    boinc.finish_message(0, "pymw api check done", False)
    """
)


@pytest.fixture
def api_sandbox(pyboinc_dist: Path, tmp_path: Path):
    worker = pyboinc_dist / "linux"
    manifest = json.loads((worker / "manifest.json").read_text())
    by_role = {entry["role"]: entry["file"] for entry in manifest["files"]}
    with reachable_temp_dir() as base:
        task = base / "task"
        task.mkdir()
        (task / "check.py").write_text(TASK_SCRIPT)
        wrapper = tmp_path / EXECUTABLE
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec {worker / by_role['executable']} {task / 'check.py'} "
            f"{worker / by_role['stdlib']} in out\n"
        )
        wrapper.chmod(0o755)
        sandbox = Sandbox.open(base / "project")
        sandbox.add_app(
            APP,
            [wrapper],
            version_xml=VERSION_XML,
            templates=(
                (REFERENCE / "template_in.xml").read_text(),
                # upload_file sends the file from the project directory, where a
                # <copy_file/> output arrives only when the task ends
                (REFERENCE / "template_out.xml").read_text().replace("<copy_file/>", ""),
            ),
        )
        sandbox.start()
        try:
            yield sandbox
        finally:
            sandbox.stop()


def say_network_is_available(client, stop: threading.Event) -> None:
    """What a volunteer on a dial-up line does (Manager: "network available"): only then
    does the client answer boinc_need_network with <network_available/>."""
    while not stop.wait(2):
        try:
            client.boinccmd("--network_available")
        except Exception:  # the client is starting or exiting; try again
            pass


def test_every_call_works_under_the_real_client(api_sandbox: Sandbox, tmp_path: Path):
    source = tmp_path / "input.txt"
    source.write_text("hello\n")
    api_sandbox.run_tool("stage_file", str(source))
    api_sandbox.run_tool("create_work", "--appname", APP, "--wu_name", "api_wu", "input.txt")
    assert api_sandbox.wait_for("results_ready_to_send", 1, timeout=30)
    client = api_sandbox.add_client(exit_when_idle=True, fetch_minimal_work=True)
    stop = threading.Event()
    volunteer = threading.Thread(target=say_network_is_available, args=(client, stop))
    volunteer.start()
    try:
        assert wait_until(lambda: api_sandbox.job_states()["results_reported"] >= 1, 150), (
            client.log()[-3000:]
        )
    finally:
        stop.set()
        volunteer.join()
        client.stop()
    with api_sandbox.project.connect() as database:
        row = database.one("SELECT outcome, exit_status, stderr_out FROM result")
    stderr = row["stderr_out"]
    assert row["outcome"] == 1 and row["exit_status"] == 0, stderr + client.log()[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith(REPORT_MARK))
    report = json.loads(line[len(REPORT_MARK) :])

    assert report["standalone"] is False
    assert report["init_options"] is None  # applied again, under the client
    assert report["init_parallel"].startswith("RuntimeError: boinc.init_options: multi_thread")
    assert report["app_name"] == APP
    init_data = report["init_data"]
    assert init_data["wu_name"] == "api_wu" and init_data["client_pid"] > 0
    assert init_data["slot_dir_ok"] and init_data["project_dir_ok"]
    assert init_data["p_ncpus"] >= 1 and init_data["os_name"].startswith("Linux")
    assert init_data["app_files"] == [EXECUTABLE]
    # the sandbox's client runs with suspend_cpu_usage 0 in global_prefs_override.xml
    assert init_data["suspend_cpu_usage"] == 0 and init_data["override_file_present"]
    assert report["parse_init_data_file"] is None
    assert report["resolve_out"].startswith("../../projects/")  # a soft link, followed
    assert report["fraction_out_of_range"].startswith("ValueError: boinc.fraction_done")
    assert report["fraction"] == 0.25
    assert report["ticks"] >= 2
    assert report["wu_cpu_time"] >= 0.4
    assert report["elapsed_time"] >= 2.0
    assert report["worker_thread_cpu_time"] > 0
    assert report["status"]["suspended"] is False and report["status"]["abort_request"] is False
    assert re.fullmatch(r"\d\d:\d\d:\d\d \(\d+\):", report["msg_prefix"])
    assert report["network_poll_at_once"] is False and report["network_poll"] is True, report
    assert report["trickle_down"] is None
    for name in ("suspend_other_activities", "ops_per_cpu_sec", "set_credit_claim"):
        assert report[name].startswith("NotImplementedError"), name
    assert report["upload_status"] == 0  # the client uploaded `out` before the finish
    assert "called boinc_finish(0)" in stderr
    # temporary_exit ended the first episode, and the client restarted the task
    assert "episode 1 ends with temporary_exit" in stderr
    assert "temporary_exit returned" not in stderr
    assert "Can't open init data file" not in stderr  # never standalone
