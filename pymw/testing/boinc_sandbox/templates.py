"""Input and output templates, as `create_work` and the transitioner instantiate them.

Stands in for BOINC's `process_input_template` (tools/process_input_template.cpp) and
`process_result_template` (tools/process_result_template.cpp). Template syntax is the
real one (see templates/<app>_in and _out of a real project).
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

#: <workunit> fields a template may set (create_work's command line may override them).
WORKUNIT_FIELDS = (
    "rsc_fpops_est",
    "rsc_fpops_bound",
    "rsc_memory_bound",
    "rsc_disk_bound",
    "delay_bound",
    "min_quorum",
    "target_nresults",
    "max_error_results",
    "max_total_results",
    "max_success_results",
)


class TemplateError(ValueError):
    """A template that does not fit its job (wrong file count, bad XML)."""


@dataclass(frozen=True)
class InputFile:
    """A staged (or remote) input file, as the workunit's <file_info> describes it."""

    name: str
    url: str
    md5: str
    nbytes: int


@dataclass(frozen=True)
class Workunit:
    """What process_input_template makes of a template and a job."""

    xml_doc: str
    fields: dict[str, float]


def parse_fragment(text: str) -> ET.Element:
    """Parse XML that may have several top-level elements (BOINC's xml_doc fields)."""
    try:
        return ET.fromstring(f"<fragment>{text}</fragment>")
    except ET.ParseError as error:
        raise TemplateError(f"bad XML: {error}") from error


def to_text(element: ET.Element) -> str:
    ET.indent(element, space="    ")
    return ET.tostring(element, encoding="unicode").strip() + "\n"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def process_input_template(
    template: str, files: list[InputFile], command_line: str | None = None
) -> Workunit:
    """Bind the input files to the template's <file_info>s, in order of <number>."""
    root = parse_fragment(template)
    body = root.find("input_template")
    if body is None:
        raise TemplateError("input template has no <input_template>")
    slots = body.findall("file_info")
    if len(slots) != len(files):
        raise TemplateError(
            f"the input template has {len(slots)} file(s) but {len(files)} were given"
        )
    numbers = [int(slot.findtext("number", str(i))) for i, slot in enumerate(slots)]
    by_number = dict(zip(numbers, files, strict=True))
    slot_for = dict(zip(numbers, slots, strict=True))

    doc = ET.Element("fragment")
    for number in sorted(by_number):
        info = _sub(doc, "file_info")
        f = by_number[number]
        _sub(info, "name", f.name)
        _sub(info, "url", f.url)
        _sub(info, "md5_cksum", f.md5)
        _sub(info, "nbytes", str(f.nbytes))
        # Flags such as <no_delete/> and <sticky/> go with the file, as in the real one.
        info.extend(child for child in slot_for[number] if child.tag != "number")
    workunit = _sub(doc, "workunit")
    template_wu = body.find("workunit")
    fields: dict[str, float] = {}
    template_command_line = None
    for child in template_wu if template_wu is not None else []:
        if child.tag == "file_ref":
            ref = _sub(workunit, "file_ref")
            number = int(child.findtext("file_number", "0"))
            if number not in by_number:
                raise TemplateError(f"file_ref to file_number {number}, which is not an input")
            _sub(ref, "file_name", by_number[number].name)
            for part in child:
                if part.tag != "file_number":
                    ref.append(part)
        elif child.tag in WORKUNIT_FIELDS:
            fields[child.tag] = float((child.text or "0").strip())
        elif child.tag == "command_line":
            template_command_line = (child.text or "").strip()
        else:
            workunit.append(child)
    line = command_line if command_line is not None else template_command_line
    if line:
        _sub(workunit, "command_line", f"\n{line}\n")
    return Workunit(xml_doc="".join(to_text(e) for e in doc), fields=fields)


def process_result_template(template: str, result_name: str, upload_url: str) -> str:
    """The result's xml_doc_in: output <file_info>s and <result>, placeholders filled."""
    tag = secrets.randbelow(2**31)
    text = template.replace("<UPLOAD_URL/>", upload_url)
    for n in range(text.count("<OUTFILE_")):
        text = text.replace(f"<OUTFILE_{n}/>", f"{result_name}_r{tag}_{n}")
    body = parse_fragment(text).find("output_template")
    if body is None:
        raise TemplateError("output template has no <output_template>")
    return "".join(to_text(child) for child in body)
