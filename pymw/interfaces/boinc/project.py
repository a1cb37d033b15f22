"""A BOINC server project directory, as PyMW sets it up and uses it.

Written against the command-line contracts of BOINC server release 1.6 (BOINC 8.x):
`config.xml`, `project.xml`, `bin/xadd`, `bin/update_versions --noconfirm`, `bin/start`,
`bin/stop`, `bin/create_work --stdin`, and the download hierarchy. BOINC's Python DB layer
is broken on Python 3, so nothing here touches the database: only files and bin/ tools.
Every change is written only when the content differs, so a second setup changes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from .constants import APP_FRIENDLY_NAME, APP_NAME

logger = logging.getLogger("pymw.boinc")

DEFAULT_FANOUT = 1024


class BoincToolError(UserError):
    """A bin/ tool of the project failed; the message carries its output."""


def write_if_changed(path: Path, content: bytes | str, mode: int | None = None) -> bool:
    """Write `content` unless the file already holds it; True if it was written."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".pymw-tmp")
    temporary.write_bytes(data)
    if mode is not None:
        temporary.chmod(mode)
    temporary.replace(path)
    return True


def xml_text(element: ET.Element) -> str:
    """Indented XML with empty tags written `<tag/>`: BOINC substitutes `<OUTFILE_0/>` in
    templates as literal text, and ElementTree's own `<tag />` would not match."""
    ET.indent(element)
    return ET.tostring(element, encoding="unicode").replace(" />", "/>") + "\n"


def _daemon_key(command: str) -> tuple[str, ...]:
    """A daemon's identity: its command without debug levels (`-d 3`)."""
    words = command.split()
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("-d", "--d", "-debug_level"):
            skip = True
        else:
            kept.append(word)
    return tuple(kept)


@dataclass(frozen=True)
class BoincProject:
    """Paths and tools of one project; `open` checks it really is a BOINC project."""

    root: Path
    host: str
    download_dir: Path
    upload_dir: Path
    fanout: int

    @classmethod
    def open(cls, project_home: str | Path | None) -> BoincProject:
        if not project_home:
            raise UserError(
                "the boinc interface needs the project directory: add -p <project_home>"
            )
        root = Path(project_home).expanduser().resolve()
        config_path = root / "config.xml"
        if not root.is_dir():
            raise UserError(f"BOINC project directory {root} does not exist; check -p")
        if not config_path.is_file() or not (root / "bin").is_dir():
            raise UserError(
                f"{root} is not a BOINC project (no config.xml and bin/); point -p at the "
                "directory make_project created"
            )
        try:
            config = ET.parse(config_path).getroot().find("config")
        except ET.ParseError as error:
            raise UserError(f"{config_path} is not valid XML: {error}") from None
        if config is None:
            raise UserError(f"{config_path} has no <config> section; is it a BOINC project?")

        def path_of(tag: str, default: str) -> Path:
            return Path((config.findtext(tag) or "").strip() or root / default)

        return cls(
            root=root,
            host=(config.findtext("host") or "").strip() or socket.gethostname().split(".")[0],
            download_dir=path_of("download_dir", "download"),
            upload_dir=path_of("upload_dir", "upload"),
            fanout=int(config.findtext("uldl_dir_fanout") or DEFAULT_FANOUT),
        )

    # ------------------------------------------------------------------- tools

    def run_tool(self, name: str, *args: str, stdin: str | None = None) -> str:
        """Run bin/<name> in the project directory; a failure is a BoincToolError."""
        tool = self.root / "bin" / name
        if not tool.exists():
            raise UserError(f"{tool} is missing; is {self.root} a complete BOINC project?")
        logger.info("running bin/%s %s", name, " ".join(args))
        run = subprocess.run(
            [str(tool), *args], cwd=self.root, input=stdin, text=True, capture_output=True
        )
        if run.returncode != 0:
            output = (run.stderr or run.stdout).strip().splitlines()
            raise BoincToolError(
                f"bin/{name} failed (exit {run.returncode}): "
                f"{output[-1] if output else 'no output'}"
            )
        return run.stdout

    def download_path(self, name: str) -> Path:
        """Where a file named `name` lives in the download hierarchy (dir_hier_path)."""
        digest = hashlib.md5(name.encode("utf-8")).hexdigest()
        return self.download_dir / f"{int(digest[1:8], 16) % self.fanout:x}" / name

    # ----------------------------------------------------------- config edits

    def ensure_daemons(self, commands: tuple[str, ...]) -> bool:
        """Add the daemons missing from config.xml for this project's host."""
        path = self.root / "config.xml"
        tree = ET.parse(path)
        daemons = tree.getroot().find("daemons")
        if daemons is None:
            daemons = ET.SubElement(tree.getroot(), "daemons")
        present = {
            _daemon_key(daemon.findtext("cmd") or "")
            for daemon in daemons.findall("daemon")
            if (daemon.findtext("host") or self.host).strip() == self.host
        }
        missing = [command for command in commands if _daemon_key(command) not in present]
        for command in missing:
            daemon = ET.SubElement(daemons, "daemon")
            ET.SubElement(daemon, "cmd").text = command
            program = command.split()[0]
            # Two daemons from one binary need their own log and pid files.
            stem = "_".join(_daemon_key(command)).replace("-", "")
            if program in ("sample_trivial_validator", "script_assimilator"):
                ET.SubElement(daemon, "output").text = f"{stem}.log"
                ET.SubElement(daemon, "pid_file").text = f"{stem}.pid"
        if missing:
            write_if_changed(path, xml_text(tree.getroot()))
            logger.info("added daemons to config.xml: %s", ", ".join(missing))
        return bool(missing)

    def ensure_app(self) -> bool:
        """Declare the pymw app in project.xml and load it with bin/xadd."""
        path = self.root / "project.xml"
        tree = ET.parse(path) if path.exists() else ET.ElementTree(ET.Element("boinc"))
        names = {(app.findtext("name") or "").strip() for app in tree.getroot().findall("app")}
        if APP_NAME in names:
            return False
        app = ET.SubElement(tree.getroot(), "app")
        ET.SubElement(app, "name").text = APP_NAME
        ET.SubElement(app, "user_friendly_name").text = APP_FRIENDLY_NAME
        write_if_changed(path, xml_text(tree.getroot()))
        self.run_tool("xadd")
        return True

    def restart_daemons(self) -> None:
        self.run_tool("stop")
        self.run_tool("start")
