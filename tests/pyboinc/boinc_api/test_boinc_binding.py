"""The `boinc` module in standalone mode, each case in a fresh process."""

import json
import os
import re
import subprocess
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
from pyboinc_helpers import copy_init_data, run_python

pytestmark = pytest.mark.usefixtures("compiled_binding")

PRELUDE = "from pyboinc import boinc_api as boinc\n"
_LIBBOINC_API = Path(os.environ.get("BOINC_LIBRARY_DIR", "/usr/lib/x86_64-linux-gnu")) / (
    "libboinc_api.so"
)


def test_finish_gives_its_status_and_writes_the_finish_file(tmp_path):
    started = time.monotonic()
    result = run_python(
        PRELUDE + "boinc.init()\nprint('before', end='')\nboinc.finish(3)\n", tmp_path
    )
    assert result.returncode == 3
    assert result.stdout == "before"  # flushed although boinc_finish skips atexit
    assert (tmp_path / "boinc_finish_called").read_text().strip() == "3"
    assert "called boinc_finish(3)" in (tmp_path / "stderr.txt").read_text()
    assert time.monotonic() - started < 10  # standalone: no 2 s wait... and no hang


def test_finish_without_init_still_writes_the_finish_file(tmp_path):
    result = run_python(PRELUDE + "boinc.finish(0)\n", tmp_path)
    assert result.returncode == 0
    assert (tmp_path / "boinc_finish_called").exists()


def test_resolve_filename_follows_soft_links(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "in").write_text("<soft_link>elsewhere/real_input</soft_link>\n")
    (tmp_path / "plain").write_text("data")
    code = (
        PRELUDE
        + "boinc.init()\nprint(boinc.resolve_filename('in'), boinc.resolve_filename('plain'))"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["elsewhere/real_input", "plain"]


def test_get_init_data_reads_the_slot_file(tmp_path):
    copy_init_data(tmp_path)
    code = PRELUDE + (
        "boinc.init()\nd = boinc.get_init_data()\n"
        "print(boinc.get_app_name(), d.wu_name, d.checkpoint_period, d.host.p_ncpus, "
        "boinc.is_standalone())"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["uppercase", "golden_wu_1795306365", "60.0", "2", "True"]


def test_get_init_data_before_init_and_without_file(tmp_path):
    result = run_python(PRELUDE + "print(repr(boinc.get_app_name()))", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "''"


def test_progress_status_and_times(tmp_path):
    code = PRELUDE + (
        "boinc.init()\nboinc.fraction_done(0.25)\nprint(boinc.get_fraction_done())\n"
        "s = boinc.get_status()\nprint(s.suspended, s.quit_request)\n"
        "print(boinc.wu_cpu_time() >= 0, boinc.elapsed_time() >= 0, boinc.network_poll())\n"
        "print(boinc.receive_trickle_down(), boinc.time_to_checkpoint())\n"
        "boinc.begin_critical_section(); boinc.end_critical_section()\n"
        "boinc.checkpoint_completed()\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "0.25",
        "False",
        "False",
        "True",
        "True",
        "True",
        "None",
        "False",
    ]


def test_boinc_error_names_the_call():
    from pyboinc.boinc_api import BoincError
    from pyboinc.boinc_api._binding import check

    assert check("fraction_done", 0) == 0
    with pytest.raises(BoincError, match=r"boinc_upload_file failed with status -108") as error:
        check("upload_file", -108)
    assert (error.value.call, error.value.code) == ("upload_file", -108)


def test_a_stale_binding_is_refused_with_the_fix(monkeypatch):
    from pyboinc.boinc_api import _binding, _declarations

    monkeypatch.setattr(_binding.Binding, "lib", None)
    monkeypatch.setattr(_binding.Binding, "ffi", None)
    monkeypatch.setattr(_declarations, "binding_stamp", lambda: "0000000000000000")
    with pytest.raises(_binding.BindingError, match=r"stale.*build_binding"):
        _binding.Binding.load()


# ------------------------------------------------------------------ issue 12, item 6


def test_init_is_idempotent_one_runtime_one_timer_thread(tmp_path):
    code = PRELUDE + (
        "import os\nboinc.init()\nonce = len(os.listdir('/proc/self/task'))\n"
        "boinc.init(); boinc.init_options(boinc.Options())\n"
        "print(once, len(os.listdir('/proc/self/task')))\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    once, after = result.stdout.split()
    assert once == after  # a second boinc_init would start a second timer thread
    assert (tmp_path / "stderr.txt").read_text().count("running in standalone mode") == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("boinc.fraction_done(1.5)", r"fraction_done: fraction must be in \[0, 1\], not 1.5"),
        ("boinc.fraction_done(-0.1)", r"must be in \[0, 1\]"),
        ("boinc.fraction_done(float('nan'))", r"must be in \[0, 1\], not nan"),
        ("boinc.finish(300)", r"finish: status must be in 0-255, not 300"),
        ("boinc.finish(-1)", r"must be in 0-255, not -1"),
        ("boinc.report_app_status(1, 1, 2)", r"fraction must be in \[0, 1\]"),
        ("boinc.set_min_checkpoint_period(-5)", r"seconds must be in 0-"),
        ("boinc.temporary_exit(-1)", r"delay must be in 0-"),
        ("boinc.network_usage(-1, 0)", r"sent must be >= 0"),
        ("boinc.finish_message(0, 'two\\nlines')", r"message must be one line"),
        ("boinc.web_graphics_url('x' * 300)", r"url must be text under 256 bytes"),
    ],
)
def test_out_of_range_arguments_are_value_errors_naming_the_range(call, message):
    from pyboinc import boinc_api as boinc

    with pytest.raises(ValueError, match=message):
        eval(call, {"boinc": boinc})  # the literal calls above, nothing else


def test_arguments_of_the_wrong_type_are_type_errors():
    from pyboinc import boinc_api as boinc

    with pytest.raises(TypeError, match="fraction must be a number, not str"):
        boinc.fraction_done("0.5")
    with pytest.raises(TypeError, match="status must be an int, not float"):
        boinc.finish(1.0)
    with pytest.raises(TypeError, match=r"options must be boinc\.Options"):
        boinc.init_options({"multi_process": True})
    with pytest.raises(TypeError, match="not callable"):
        boinc.register_timer_callback(42)


def test_sys_exit_out_of_range_exits_with_the_status_it_reports(tmp_path):
    """sys.exit(300) used to exit 44 (300 & 255) with 300 in boinc_finish_called."""
    (tmp_path / "task.py").write_text("import sys\nsys.exit(300)\n")
    zipfile.ZipFile(tmp_path / "stdlib.zip", "w").close()
    result = run_python(
        "import runpy; runpy.run_module('pyboinc', run_name='__main__')",
        tmp_path,
        "task.py",
        "stdlib.zip",
        "in",
        "out",
    )
    reported = (tmp_path / "boinc_finish_called").read_text().split()[0]
    assert result.returncode == int(reported) == 1
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "pymw worker: exit status 300 is outside 0-255" in stderr


def test_wu_cpu_time_counts_cpu_now_standalone(tmp_path):
    code = PRELUDE + (
        "import time\nboinc.init()\nstart = time.process_time()\n"
        "while time.process_time() - start < 0.35: pass\nprint(boinc.wu_cpu_time())\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) >= 0.35  # it was 0.0: BOINC's sample of the last second


def test_wu_cpu_time_adds_earlier_episodes_from_init_data(tmp_path):
    copy_init_data(tmp_path)
    init_data = tmp_path / "init_data.xml"
    text = init_data.read_text().replace(
        "<wu_cpu_time>0.000000</wu_cpu_time>", "<wu_cpu_time>1000.000000</wu_cpu_time>"
    )
    init_data.write_text(text)
    result = run_python(PRELUDE + "boinc.init()\nprint(boinc.wu_cpu_time())", tmp_path)
    assert result.returncode == 0, result.stderr
    assert 1000 < float(result.stdout) < 1010


def test_dir_shows_only_the_api(tmp_path):
    code = PRELUDE + "print(' '.join(n for n in dir(boinc) if not n.startswith('_')))"
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    from pyboinc import boinc_api as boinc

    assert sorted(result.stdout.split()) == sorted(boinc.__all__)
    assert not {"os", "sys", "time", "Binding", "dataclasses"} & set(result.stdout.split())


def test_init_leaves_the_records_and_their_imports_for_first_use(tmp_path):
    # The worker imports this module and calls init() before every task: a task that
    # never reads a record must not pay for dataclasses (with inspect, ast, dis) or typing.
    code = PRELUDE + (
        "import sys\n"
        "boinc.init()\n"
        "print(sorted({'dataclasses', 'typing'} & set(sys.modules)))\n"
        "options = boinc.Options(multi_process=True)\n"
        "boinc.init_options(options)\n"
        "boinc.init()\n"
        "print(type(options).__module__, boinc.get_init_data().checkpoint_period > 0)"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[]", "pyboinc.boinc_api._records True"]


def _c_api_names() -> set[str]:
    header = Path(os.environ.get("BOINC_INCLUDE_DIR", "/usr/include/boinc")) / "boinc_api.h"
    api = header.read_text().split("API ENDS HERE")[0]
    return set(re.findall(r"\bboinc_(\w+)\s*\(", api))


def test_every_function_of_boinc_api_h_has_a_wrapper():
    from pyboinc import boinc_api as boinc

    # boinc_get_init_data_p is get_init_data for C; setMacPList/setMacIcon are not boinc_.
    wanted = _c_api_names() - {"get_init_data_p"}
    assert len(wanted) >= 39, wanted
    missing = sorted(name for name in wanted if not callable(getattr(boinc, name, None)))
    assert not missing


@pytest.mark.parametrize(
    "call",
    [
        "suspend_other_activities()",
        "resume_other_activities()",
        "ops_per_cpu_sec(1e9, 1e9)",
        "ops_cumulative(1e12, 1e12)",
        "set_credit_claim(10.0)",
    ],
)
def test_calls_the_library_does_not_define_say_so(call):
    from pyboinc import boinc_api as boinc

    name = call.split("(")[0]
    symbols = subprocess.run(
        ["nm", "-D", str(_LIBBOINC_API)], capture_output=True, text=True, check=True
    ).stdout
    assert f" boinc_{name}\n" not in symbols  # the premise: declared, never defined
    with pytest.raises(NotImplementedError, match=f"does not define it.*boinc_{name}|boinc_{name}"):
        eval(f"boinc.{call}", {"boinc": boinc})


def test_init_data_holds_every_field_the_client_wrote(tmp_path):
    copy_init_data(tmp_path)
    (tmp_path / "init_data.xml").write_text(
        (tmp_path / "init_data.xml")
        .read_text()
        .replace(
            "<app_name>uppercase</app_name>",
            "<app_name>uppercase</app_name>\n<project_preferences>\n<color>blue</color>\n"
            "<size>3</size>\n</project_preferences>",
        )
    )
    code = PRELUDE + (
        "import dataclasses, json\nboinc.init()\n"
        "print(json.dumps(dataclasses.asdict(boinc.get_init_data())))"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    client = ElementTree.parse(tmp_path / "init_data.xml").getroot()
    renamed = {"app_file": "app_files", "global_preferences": "global_prefs"}
    runtime_only = {"shm_key"}  # the shared-memory key, the API's own business
    for element in client:
        if element.tag in runtime_only:
            continue
        field = renamed.get(element.tag, element.tag)
        assert field in data, element.tag
        if element.tag in ("host_info", "proxy_info", "global_preferences"):
            nested = {"no_proxy": "noproxy_hosts"}
            for child in element:
                key = nested.get(child.tag, child.tag)
                assert key in data[field], f"{element.tag}.{child.tag}"
                _assert_same(child, data[field][key], f"{element.tag}.{child.tag}")
        elif element.tag == "app_file":
            assert data["app_files"] == ["uppercase_1.0_x86_64-pc-linux-gnu"]
        elif element.tag == "project_preferences":
            # as BOINC gives it to a C app: the whole element
            preferences = ElementTree.fromstring(data[field])
            assert preferences.tag == "project_preferences"
            assert [(c.tag, c.text) for c in preferences] == [("color", "blue"), ("size", "3")]
        else:
            _assert_same(element, data[field], element.tag)
    assert data["authenticator"] and "authenticator" not in repr(boinc_init_data_type())


def boinc_init_data_type():
    from pyboinc.boinc_api import InitData

    return InitData(authenticator="secret")


def _assert_same(element, value, where):
    text = (element.text or "").strip()
    if len(element):  # <coprocs> holds XML
        return
    if isinstance(value, bool):
        assert value == (text != "0"), where
    elif isinstance(value, int | float):
        assert value == pytest.approx(float(text)), where
    else:
        assert value == text, where


def test_finish_message_writes_the_message_for_the_client(tmp_path):
    result = run_python(
        PRELUDE + "boinc.init()\nboinc.finish_message(2, 'disk full', True)\n", tmp_path
    )
    assert result.returncode == 2
    assert (tmp_path / "boinc_finish_called").read_text() == "2\ndisk full\nnotice\n"


def test_temporary_exit_leaves_the_delay_for_the_client(tmp_path):
    result = run_python(PRELUDE + "boinc.init()\nboinc.temporary_exit(7, 'busy')\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "boinc_temporary_exit").read_text() == "7\nbusy\n"


def test_timer_callback_runs_every_second_until_unregistered(tmp_path):
    code = PRELUDE + (
        "import time\nticks = []\nboinc.init()\n"
        "boinc.register_timer_callback(lambda: ticks.append(time.monotonic()))\n"
        "time.sleep(3.5)\nboinc.register_timer_callback(None)\nseen = len(ticks)\n"
        "time.sleep(1.5)\nprint(seen, len(ticks))\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    seen, later = map(int, result.stdout.split())
    assert seen >= 2 and later == seen


def test_options_after_init_are_applied_except_multi_thread(tmp_path):
    code = PRELUDE + (
        "boinc.init()\nboinc.init_options(boinc.Options(multi_process=True))\n"
        "try:\n    boinc.init_parallel()\nexcept RuntimeError as error:\n    print(error)\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "multi_thread can be chosen only by the first init call" in result.stdout


def test_files_trickles_and_status_calls_standalone(tmp_path):
    (tmp_path / "out").write_text("result")
    (tmp_path / "trickle_down_1").write_text("<msg/>")
    code = PRELUDE + (
        "import re\nboinc.init()\nboinc.upload_file('out')\nprint(boinc.upload_status('out'))\n"
        "boinc.send_trickle_up('progress', '<done>1</done>')\n"
        "print(boinc.receive_trickle_down())\n"
        "print(bool(re.fullmatch(r'\\d\\d:\\d\\d:\\d\\d \\(\\d+\\):', boinc.msg_prefix())))\n"
        "boinc.set_min_checkpoint_period(5); boinc.network_usage(10, 20)\n"
        "boinc.report_app_status_aux(1.0, 0.5, 0.5, 0, 10, 20)\n"
        "boinc.web_graphics_url('http://localhost/g'); boinc.remote_desktop_addr('h:5900')\n"
        "boinc.parse_init_data_file()\n"
    )
    result = run_python(code, tmp_path)
    assert result.returncode == 1  # parse_init_data_file: there is no init_data.xml
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "boinc_parse_init_data_file failed with status -108" in stderr
    assert result.stdout.split() == ["-161", "trickle_down_1", "True"]
    assert (tmp_path / "boinc_ufr_out").exists()  # the upload request for the client
    assert (tmp_path / "trickle_up.xml").read_text() == (
        "<variety>progress</variety>\n<done>1</done>"
    )
