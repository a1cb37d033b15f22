"""Input and output templates instantiated like create_work and the transitioner do."""

from __future__ import annotations

from pymw.testing.boinc_sandbox.templates import (
    InputFile,
    TemplateError,
    parse_fragment,
    process_input_template,
    process_result_template,
)

FILE = InputFile("golden_in.txt", "http://h/download/45/golden_in.txt", "9307c0", 18)


def test_input_template_binds_files_and_fields(reference):
    wu = process_input_template((reference / "template_in.xml").read_text(), [FILE], "-cpu_time 8")
    doc = parse_fragment(wu.xml_doc)
    info = doc.find("file_info")
    assert info.findtext("name") == "golden_in.txt" and info.findtext("nbytes") == "18"
    ref = doc.find("workunit/file_ref")
    assert ref.findtext("file_name") == "golden_in.txt" and ref.findtext("open_name") == "in"
    assert ref.find("copy_file") is not None
    assert doc.findtext("workunit/command_line").strip() == "-cpu_time 8"
    assert wu.fields["rsc_fpops_est"] == 1e10 and wu.fields["target_nresults"] == 1


def test_input_template_refuses_wrong_file_count(reference):
    try:
        process_input_template((reference / "template_in.xml").read_text(), [])
    except TemplateError as error:
        assert "1 file" in str(error)
    else:
        raise AssertionError("no error")


def test_result_template_fills_placeholders(reference):
    doc = process_result_template(
        (reference / "template_out.xml").read_text(), "wu_0", "http://h/p_cgi/file_upload_handler"
    )
    root = parse_fragment(doc)
    name = root.findtext("file_info/name")
    assert name.startswith("wu_0_r") and name.endswith("_0")
    assert root.findtext("result/file_ref/file_name") == name
    assert root.findtext("file_info/url") == "http://h/p_cgi/file_upload_handler"
