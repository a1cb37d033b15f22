"""What a workunit's and a result's xml_doc say about their files.

Real BOINC keeps file lists only in these XML documents (`workunit.xml_doc`,
`result.xml_doc_in`); the daemons read them the same way (`get_output_file_infos`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .layout import Project
from .templates import parse_fragment


@dataclass(frozen=True)
class OutputFile:
    """An output file of a result: its physical name, open name and upload path."""

    name: str
    open_name: str
    path: Path


def output_files(project: Project, result_xml_doc_in: str) -> list[OutputFile]:
    root = parse_fragment(result_xml_doc_in)
    open_names = {
        ref.findtext("file_name", "").strip(): ref.findtext("open_name", "").strip()
        for ref in root.iter("file_ref")
    }
    files = []
    for info in root.findall("file_info"):
        name = info.findtext("name", "").strip()
        files.append(OutputFile(name, open_names.get(name, name), project.upload_path(name, False)))
    return files


def assimilated_output_path(project: Project, batch: int, wu_name: str, open_name: str) -> Path:
    """Where sample_assimilator moves an output: results/<batch>/<wu_name>__file_<open_name>.

    The layout get_output3.php reads back (BOINC's `assim_move_outfile_path`).
    """
    return project.results_dir / str(batch) / f"{wu_name}__file_{open_name}"


def input_file_names(wu_xml_doc: str, deletable_only: bool = False) -> list[str]:
    """Input files of a workunit; `deletable_only` leaves out <no_delete/> ones."""
    return [
        info.findtext("name", "").strip()
        for info in parse_fragment(wu_xml_doc).findall("file_info")
        if not (deletable_only and info.find("no_delete") is not None)
    ]
