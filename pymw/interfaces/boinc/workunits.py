"""Jobs made into BOINC workunits: names, staged files, templates, create_work lines.

Workunit names are derived from the task's content (program, input, data), so the same
program run again asks for the same workunits, and restarting a master never creates
duplicates. Input and output templates follow BOINC's `<input_template>` and
`<output_template>` formats and are named after their content, so they are immutable too.
Files several workunits name are `<no_delete/>` there and counted by shared_files.py;
each workunit's own input stays for BOINC's file_deleter.
"""

from __future__ import annotations

import shlex
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from pyboinc.contract import BOINC_FILES

from ..task_keys import digest
from .constants import (
    APP_NAME,
    DEFAULT_DELAY_BOUND,
    DEFAULT_MAX_NBYTES,
    DEFAULT_MIN_QUORUM,
    DEFAULT_RSC_DISK_BOUND,
    DEFAULT_RSC_FPOPS_BOUND,
    DEFAULT_RSC_FPOPS_EST,
    DEFAULT_RSC_MEMORY_BOUND,
    DEFAULT_TARGET_NRESULTS,
    PUBLIC_FILE_MODE,
)
from .project import BoincProject, write_if_changed, xml_text
from .shared_files import SharedFiles


@dataclass(frozen=True)
class BoincArgs:
    """Per-workunit settings (PyMW's `set_boinc_args`)."""

    target_nresults: int = DEFAULT_TARGET_NRESULTS
    min_quorum: int = DEFAULT_MIN_QUORUM
    max_nbytes: int = DEFAULT_MAX_NBYTES
    delay_bound: int = DEFAULT_DELAY_BOUND
    rsc_fpops_est: float = DEFAULT_RSC_FPOPS_EST
    rsc_fpops_bound: float = DEFAULT_RSC_FPOPS_BOUND
    rsc_memory_bound: float = DEFAULT_RSC_MEMORY_BOUND
    rsc_disk_bound: float = DEFAULT_RSC_DISK_BOUND


@dataclass(frozen=True)
class StagedFile:
    physical_name: str
    open_name: str
    shared: bool  # named by other workunits too: <no_delete/>, deleted by PyMW


def input_template(files: list[tuple[str, bool]], args: BoincArgs) -> str:
    """The template for inputs given as (open name, shared) in file_number order."""
    root = ET.Element("input_template")
    for number, (_open_name, shared) in enumerate(files):
        info = ET.SubElement(root, "file_info")
        ET.SubElement(info, "number").text = str(number)
        if shared:
            ET.SubElement(info, "no_delete")
    workunit = ET.SubElement(root, "workunit")
    for number, (open_name, _shared) in enumerate(files):
        ref = ET.SubElement(workunit, "file_ref")
        ET.SubElement(ref, "file_number").text = str(number)
        ET.SubElement(ref, "open_name").text = open_name
        ET.SubElement(ref, "copy_file")
    for field_name in (
        "rsc_fpops_est",
        "rsc_fpops_bound",
        "rsc_memory_bound",
        "rsc_disk_bound",
        "delay_bound",
        "min_quorum",
        "target_nresults",
    ):
        ET.SubElement(workunit, field_name).text = f"{getattr(args, field_name):g}"
    return xml_text(root)


# BOINC replaces <OUTFILE_0/> and <UPLOAD_URL/> as literal text, so this template is text.
_OUTPUT_TEMPLATE = """<output_template>
    <file_info>
        <name><OUTFILE_0/></name>
        <generated_locally/>
        <upload_when_present/>
        <max_nbytes>{max_nbytes}</max_nbytes>
        <url><UPLOAD_URL/></url>
    </file_info>
    <result>
        <file_ref>
            <file_name><OUTFILE_0/></file_name>
            <open_name>{open_name}</open_name>
            <copy_file/>
        </file_ref>
    </result>
</output_template>
"""


def output_template(args: BoincArgs) -> str:
    return _OUTPUT_TEMPLATE.format(max_nbytes=args.max_nbytes, open_name=BOINC_FILES.output)


def default_templates() -> dict[str, str]:
    """The app's own templates (templates/pymw_in, _out): what remote submission uses.

    Its script file is shared by the batch's jobs (`jf_<md5>`), so it is <no_delete/>.
    """
    args = BoincArgs()
    files = [(BOINC_FILES.script, True), (BOINC_FILES.input, False)]
    return {
        f"templates/{APP_NAME}_in": input_template(files, args),
        f"templates/{APP_NAME}_out": output_template(args),
    }


class WorkunitFactory:
    """Stages a batch's files and writes the create_work lines for its jobs."""

    def __init__(
        self, project: BoincProject, batch: int, args: BoincArgs, stdlib_zip: str | None
    ) -> None:
        self.project, self.batch, self.args, self.stdlib_zip = project, batch, args, stdlib_zip
        self._shared = SharedFiles(project, batch)
        self._staged: set[str] = set()
        self._output_template = self._template("out", output_template(args))
        # Per batch, not per job: a template or archive is written and hashed once.
        self._input_templates: dict[tuple[str, ...], str] = {}
        self._archive_names: dict[Path, str] = {}

    def _template(self, kind: str, text: str) -> str:
        relative = f"templates/pymw_{kind}_{digest(text.encode())[:12]}"
        write_if_changed(self.project.root / relative, text, mode=PUBLIC_FILE_MODE)
        return relative

    def _stage(self, staged: StagedFile, content: bytes | str | Path) -> None:
        """Put a file into the download hierarchy once per batch."""
        if staged.physical_name in self._staged:
            return
        if staged.shared:
            self._shared.stage(staged.physical_name, content)
        elif not self.project.download_path(staged.physical_name).exists():
            self.project.publish(staged.physical_name, content)
        self._staged.add(staged.physical_name)

    def _input_template(self, files: tuple[tuple[str, bool], ...]) -> str:
        if files not in self._input_templates:
            text = input_template(list(files), self.args)
            self._input_templates[files] = self._template("in", text)
        return self._input_templates[files]

    def _archive_name(self, data_zip: Path) -> str:
        """Staged archives are named by content, so BOINC files stay immutable."""
        if data_zip not in self._archive_names:
            self._archive_names[data_zip] = f"pymw_data_{digest(data_zip.read_bytes())[:16]}.zip"
        return self._archive_names[data_zip]

    def line_for(
        self,
        wu_name: str,
        script: str,
        program_digest: str,
        input_bytes: bytes,
        data_zip: Path | None,
    ) -> str:
        """Stage a job's files and return its `create_work --stdin` line."""
        files = [
            StagedFile(f"pymw_script_{program_digest}.py", BOINC_FILES.script, shared=True),
            StagedFile(f"{wu_name}_in", BOINC_FILES.input, shared=False),
        ]
        self._stage(files[0], script)
        self._stage(files[1], input_bytes)
        if data_zip is not None:
            files.append(StagedFile(self._archive_name(data_zip), data_zip.name, shared=True))
            self._stage(files[2], data_zip)
        template = self._input_template(tuple((f.open_name, f.shared) for f in files))
        command = BOINC_FILES.command([], self.stdlib_zip)
        words = [
            "--wu_name",
            wu_name,
            "--wu_template",
            template,
            "--result_template",
            self._output_template,
            "--command_line",
            " ".join(command),
            *(f.physical_name for f in files),
        ]
        return shlex.join(words)
