"""The `boinc` module in standalone mode, each case in a fresh process."""

import time

import pytest
from pyboinc_helpers import copy_init_data, run_python

pytestmark = pytest.mark.usefixtures("compiled_binding")

PRELUDE = "from pyboinc import boinc_api as boinc\n"


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
