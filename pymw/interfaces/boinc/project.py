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
import shutil
import socket
import stat
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ...errors import UserError
from .constants import (
    APP_FRIENDLY_NAME,
    APP_NAME,
    PUBLIC_DIR_MODE,
    PUBLIC_FILE_MODE,
    SHARED_BINARY_DAEMONS,
)

logger = logging.getLogger("pymw.boinc")

DEFAULT_FANOUT = 1024


class BoincToolError(UserError):
    """A bin/ tool of the project failed; the message carries its output."""


def write_if_changed(path: Path, content: bytes | str, mode: int | None = None) -> bool:
    """Write `content` unless the file already holds it (with `mode`, if given); True if it
    was written or its mode fixed (one an earlier version left to the umask)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path.exists() and path.read_bytes() == data:
        if mode is None or stat.S_IMODE(path.stat().st_mode) == mode:
            return False
        path.chmod(mode)
        return True
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
            message = output[-1].strip() if output else "no output"
            raise BoincToolError(
                f"bin/{name} failed (exit {run.returncode}): {message}; {self._hint(message)}, "
                "then run the program again: it picks up where it stopped"
            )
        return run.stdout

    def _hint(self, message: str) -> str:
        """What to check when a tool failed with `message` (its last line of output)."""
        if "database" in message.lower() or "mysql" in message.lower():
            return (
                "check that the project's database server is running and reachable as "
                f"config.xml's <db_host>/<db_name> say ({self.root / 'config.xml'})"
            )
        return f"check the tool's message and the project's logs in {self.root}/log_{self.host}/"

    def download_path(self, name: str) -> Path:
        """Where a file named `name` lives in the download hierarchy (dir_hier_path)."""
        digest = hashlib.md5(name.encode("utf-8")).hexdigest()
        return self.download_dir / f"{int(digest[1:8], 16) % self.fanout:x}" / name

    def publish(self, name: str, content: bytes | str | Path) -> None:
        """Put a file into the download hierarchy (what bin/stage_file does).

        Modes are set, not left to the umask: the web server that serves download/ (and
        reads it for remote submission) runs as another user than the project owner.
        """
        target = self.download_path(name)
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.parent.chmod(PUBLIC_DIR_MODE)
        temporary = target.with_name(target.name + ".pymw-tmp")
        if isinstance(content, Path):
            shutil.copyfile(content, temporary)
        else:
            temporary.write_bytes(content.encode() if isinstance(content, str) else content)
        temporary.chmod(PUBLIC_FILE_MODE)
        temporary.replace(target)

    def unpublish(self, name: str) -> None:
        """Delete a file from the download hierarchy, with the `.md5` cache create_work
        may have written beside it (config.xml's <cache_md5_info>)."""
        target = self.download_path(name)
        for path in (target, target.with_name(target.name + ".md5")):
            path.unlink(missing_ok=True)

    # ----------------------------------------------------------- config edits

    def ensure_daemons(self, required: tuple[str, ...], obsolete: tuple[str, ...]) -> list[str]:
        """Add the missing daemons to config.xml for this host and remove obsolete ones.

        Returns what changed. The daemons are recycled when anything did, stopped before
        the edit: bin/stop ends only the daemons config.xml lists, so a removed one would
        otherwise keep running (two validators racing for the same workunits).
        """
        path = self.root / "config.xml"
        tree = ET.parse(path)
        daemons = tree.getroot().find("daemons")
        if daemons is None:
            daemons = ET.SubElement(tree.getroot(), "daemons")
        ours = {
            _daemon_key(daemon.findtext("cmd") or ""): daemon
            for daemon in daemons.findall("daemon")
            if (daemon.findtext("host") or self.host).strip() == self.host
        }
        removed = [command for command in obsolete if _daemon_key(command) in ours]
        missing = [command for command in required if _daemon_key(command) not in ours]
        if not removed and not missing:
            return []
        self.run_tool("stop")
        for command in removed:
            daemons.remove(ours[_daemon_key(command)])
        for command in missing:
            daemon = ET.SubElement(daemons, "daemon")
            ET.SubElement(daemon, "cmd").text = command
            # Two daemons from one binary need their own log and pid files.
            if command.split()[0] in SHARED_BINARY_DAEMONS:
                stem = "_".join(_daemon_key(command)).replace("-", "")
                ET.SubElement(daemon, "output").text = f"{stem}.log"
                ET.SubElement(daemon, "pid_file").text = f"{stem}.pid"
        write_if_changed(path, xml_text(tree.getroot()))
        self.run_tool("start")
        changes = [f"removed daemon {command.split()[0]} from config.xml" for command in removed]
        changes += [f"added daemon {command.split()[0]} to config.xml" for command in missing]
        logger.info("BOINC daemons: %s; restarted them", "; ".join(changes))
        return changes

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
