"""The project directory: what BOINC's `make_project` creates, and how to read it back.

Stands in for `tools/make_project` of BOINC server release 1.6.2. The layout, the
`config.xml` sections and the download/upload hierarchy are the real ones, so that
tools written against this directory work against a real project. What differs: the
database is an SQLite file in `db/` instead of MySQL (`db/` is writable by the project
owner and the web user, who both reach MySQL on a real server), and there is no
`html/` tree (the HTTP side is served by `http_server`). File modes are those of a
real project (see `webuser`): upload/ writable by the web user, download/ not.
"""

from __future__ import annotations

import hashlib
import re
import socket
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from . import db
from .constants import (
    DAILY_RESULT_QUOTA,
    DB_DIR,
    DB_FILE,
    DB_UP_FILE,
    FANOUT,
    HTTPD_NAME,
    MAX_WUS_TO_SEND,
    MIN_SENDWORK_INTERVAL_SECONDS,
    PLATFORM,
)
from .signing import write_code_sign_keys
from .webuser import mkdir_like_parent, set_project_modes

#: Platforms listed in a fresh project.xml (a subset of make_project's list).
DEFAULT_PLATFORMS = {
    PLATFORM: "Linux running on an AMD x86_64 or Intel EM64T CPU",
    "i686-pc-linux-gnu": "Linux running on an Intel x86-compatible CPU",
    "windows_x86_64": "Microsoft Windows running on an AMD x86_64 or Intel EM64T CPU",
    "x86_64-apple-darwin": "Intel 64-bit Mac OS 10.5 or later",
    "anonymous": "anonymous",
}
#: Daemons every fresh project runs; apps add their validators and assimilators.
DEFAULT_DAEMONS = ("feeder -d 3", "transitioner -d 3", "file_deleter -d 3")
#: Tools make_project puts into bin/ (the daemons are added by `tools.install_bin`).
PROJECT_DIRS = ("bin", "templates", "apps", "keys", "results", "download", "upload", DB_DIR)
#: The sandbox's own config.xml flag (no real server has it): send every result with
#: <report_immediately/>. A real project gets that per app with <report_immediately/>
#: in the output template's <result>, which the sandbox honours too.
REPORT_IMMEDIATELY_FLAG = "sandbox_report_immediately"


def short_hostname() -> str:
    """The `<host>` of config.xml: daemons run only where it matches."""
    return socket.gethostname().split(".")[0]


def filename_hash(name: str, fanout: int = FANOUT) -> str:
    """BOINC's `filename_hash`: md5 of the name, hex digits 1..7, modulo fanout, in hex."""
    digest = hashlib.md5(name.encode()).hexdigest()
    return f"{int(digest[1:8], 16) % fanout:x}"


def dir_hier_path(top: Path, name: str, fanout: int = FANOUT, create: bool = True) -> Path:
    """Path of `name` in a hashed download/upload hierarchy (BOINC's dir_hier_path)."""
    directory = top / filename_hash(name, fanout)
    if create:
        mkdir_like_parent(directory)
    return directory / name


def dir_hier_url(base_url: str, name: str, fanout: int = FANOUT) -> str:
    """URL of `name` under a hashed download URL (BOINC's dir_hier_url)."""
    return f"{base_url}/{filename_hash(name, fanout)}/{name}"


@dataclass(frozen=True)
class Project:
    """A project directory, with what its config.xml says."""

    root: Path
    long_name: str
    host: str
    master_url: str
    download_url: str
    upload_url: str
    fanout: int

    @classmethod
    def load(cls, root: Path) -> Project:
        """Read `root/config.xml`; raises FileNotFoundError if it is not a project."""
        root = Path(root).resolve()
        config = ET.parse(root / "config.xml").getroot().find("config")
        if config is None:
            raise ValueError(f"{root}/config.xml has no <config> section")

        def text(tag: str) -> str:
            return (config.findtext(tag) or "").strip()

        return cls(
            root=root,
            long_name=text("long_name"),
            host=text("host"),
            master_url=text("master_url"),
            download_url=text("download_url"),
            upload_url=text("upload_url"),
            fanout=int(text("uldl_dir_fanout") or FANOUT),
        )

    @property
    def name(self) -> str:
        """The URL path component of the project (`/<name>/`, `/<name>_cgi/`)."""
        return self.master_url.rstrip("/").rsplit("/", 1)[1]

    @property
    def port(self) -> int:
        return int(re.match(r"http://[^:/]+:(\d+)/", self.master_url).group(1))

    @property
    def scheduler_url(self) -> str:
        return self.cgi_url("cgi")

    def cgi_url(self, program: str) -> str:
        """URL of a program in cgi-bin/ (the scheduler, file_upload_handler)."""
        return self.master_url.rstrip("/") + f"_cgi/{program}"

    def config_value(self, tag: str, default: str = "") -> str:
        """Any other <config> value (read each time: the file may have been edited)."""
        config = ET.parse(self.root / "config.xml").getroot().find("config")
        value = config.findtext(tag) if config is not None else None
        return default if value is None else value.strip()

    def set_config_value(self, tag: str, value: str) -> None:
        """Set `<config><tag>`, as an administrator edits config.xml: replaced whole,
        keeping its mode, since the web side reads it as another user."""
        path = self.root / "config.xml"
        tree = ET.parse(path)
        config = tree.getroot().find("config")
        element = config.find(tag)
        if element is None:
            element = ET.SubElement(config, tag)
        element.text = value
        temporary = path.with_name("config.xml.new")
        tree.write(temporary)
        temporary.chmod(path.stat().st_mode)
        temporary.replace(path)

    @property
    def download_dir(self) -> Path:
        return self.root / "download"

    @property
    def upload_dir(self) -> Path:
        return self.root / "upload"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def key_dir(self) -> Path:
        return self.root / "keys"

    @property
    def app_dir(self) -> Path:
        return self.root / "apps"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def log_dir(self) -> Path:
        return self.root / f"log_{self.host}"

    @property
    def pid_dir(self) -> Path:
        return self.root / f"pid_{self.host}"

    def config_flag(self, tag: str) -> bool:
        """A boolean <config> option: `<tag/>` or `<tag>1</tag>` (BOINC's parse_bool)."""
        config = ET.parse(self.root / "config.xml").getroot().find("config")
        element = config.find(tag) if config is not None else None
        return element is not None and (element.text or "").strip() not in ("0",)

    @property
    def db_path(self) -> Path:
        return self.root / DB_DIR / DB_FILE

    @property
    def db_up_file(self) -> Path:
        """Present while the database is up (`Sandbox.database_down()` removes it)."""
        return self.root / DB_DIR / DB_UP_FILE

    @property
    def httpd_pid_file(self) -> Path:
        return self.pid_dir / f"{HTTPD_NAME}.pid"

    def download_path(self, name: str, create: bool = True) -> Path:
        return dir_hier_path(self.download_dir, name, self.fanout, create)

    def upload_path(self, name: str, create: bool = True) -> Path:
        return dir_hier_path(self.upload_dir, name, self.fanout, create)

    def download_file_url(self, name: str) -> str:
        return dir_hier_url(self.download_url, name, self.fanout)

    def connect(self) -> db.Database:
        """A connection; raises db.DatabaseDown while the database is down."""
        if not self.db_up_file.exists():
            raise db.DatabaseDown("Can't connect to the sandbox database server (it is down)")
        return db.Database(self.db_path)


def _indent_write(tree: ET.ElementTree, path: Path) -> None:
    ET.indent(tree, space="    ")
    path.write_text(
        '<?xml version="1.0" ?>\n' + ET.tostring(tree.getroot(), encoding="unicode") + "\n"
    )


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def make_project(
    root: Path,
    port: int,
    long_name: str = "PyMW BOINC sandbox",
    report_immediately: bool = False,
) -> Project:
    """Create a project directory like `make_project` does, with an admin account.

    The port is part of the master URL, the identity of a BOINC project, so it is fixed
    here and kept for the life of the directory. config.xml has what the real
    project's had: min_sendwork_interval 6, daily_result_quota 500, send_result_abort,
    and no next_rpc_delay. `report_immediately` sets the sandbox-only flag that makes
    the scheduler send every job with <report_immediately/> (a real one never does);
    without it, clients report lazily, on a later scheduler RPC.
    """
    root = Path(root).resolve()
    name = re.sub(r"[^a-z0-9_]", "_", root.name.lower()) or "sandbox"
    host = short_hostname()
    master_url = f"http://127.0.0.1:{port}/{name}/"
    for sub in (*PROJECT_DIRS, f"log_{host}", f"pid_{host}"):
        (root / sub).mkdir(parents=True, exist_ok=True)

    boinc = ET.Element("boinc")
    config = _sub(boinc, "config")
    values = {
        "long_name": long_name,
        "host": host,
        "db_name": DB_FILE,
        "uldl_dir_fanout": str(FANOUT),
        "master_url": master_url,
        "download_url": f"{master_url}download",
        "upload_url": f"{master_url.rstrip('/')}_cgi/file_upload_handler",
        "download_dir": str(root / "download"),
        "upload_dir": str(root / "upload"),
        "key_dir": f"{root / 'keys'}/",
        "app_dir": str(root / "apps"),
        "log_dir": str(root / f"log_{host}"),
        "min_sendwork_interval": str(MIN_SENDWORK_INTERVAL_SECONDS),
        "max_wus_to_send": str(MAX_WUS_TO_SEND),
        "daily_result_quota": str(DAILY_RESULT_QUOTA),
        "send_result_abort": "1",
        "dont_generate_upload_certificates": "1",
        "ignore_upload_certificates": "1",
    }
    if report_immediately:
        values[REPORT_IMMEDIATELY_FLAG] = "1"
    for tag, value in values.items():
        _sub(config, tag, value)
    _sub(boinc, "tasks")
    daemons = _sub(boinc, "daemons")
    for cmd in DEFAULT_DAEMONS:
        _sub(_sub(daemons, "daemon"), "cmd", cmd)
    _indent_write(ET.ElementTree(boinc), root / "config.xml")

    project_xml = ET.Element("boinc")
    for platform, friendly in DEFAULT_PLATFORMS.items():
        element = _sub(project_xml, "platform")
        _sub(element, "name", platform)
        _sub(element, "user_friendly_name", friendly)
    _indent_write(ET.ElementTree(project_xml), root / "project.xml")

    write_code_sign_keys(root / "keys")
    project = Project.load(root)
    project.db_up_file.touch()
    with project.connect() as database:
        database.create_schema()
        database.add_user("sandbox", "sandbox@127.0.0.1", submit_all=True)
    from .tools import install_bin  # tools imports layout: resolve the cycle lazily

    install_bin(project, python=sys.executable)
    set_project_modes(project)
    return project


def add_app_to_project_xml(project: Project, app: str, friendly_name: str = "") -> None:
    """Add an `<app>` to project.xml (then run bin/xadd), unless it is there."""
    path = project.root / "project.xml"
    tree = ET.parse(path)
    if any(a.findtext("name") == app for a in tree.getroot().iter("app")):
        return
    element = _sub(tree.getroot(), "app")
    _sub(element, "name", app)
    _sub(element, "user_friendly_name", friendly_name or app)
    _indent_write(tree, path)


def add_daemon(project: Project, cmd: str, output: str = "", pid_file: str = "") -> None:
    """Add a `<daemon>` to config.xml (two daemons of one program need output/pid_file)."""
    path = project.root / "config.xml"
    tree = ET.parse(path)
    daemons = tree.getroot().find("daemons")
    if daemons is None:
        daemons = _sub(tree.getroot(), "daemons")
    if any(d.findtext("cmd", "").strip() == cmd for d in daemons.iter("daemon")):
        return
    daemon = _sub(daemons, "daemon")
    _sub(daemon, "cmd", cmd)
    if output:
        _sub(daemon, "output", output)
    if pid_file:
        _sub(daemon, "pid_file", pid_file)
    _indent_write(tree, path)


@dataclass(frozen=True)
class DaemonSpec:
    """One <daemon> of config.xml."""

    cmd: str
    host: str
    output: str
    pid_file: str
    disabled: bool

    @property
    def program(self) -> str:
        return self.cmd.split()[0]


def read_daemons(project: Project) -> list[DaemonSpec]:
    """The `<daemons>` of config.xml, with BOINC's default log and pid file names."""
    root = ET.parse(project.root / "config.xml").getroot()
    specs = []
    for element in root.iter("daemon"):
        cmd = element.findtext("cmd", "").strip()
        program = Path(cmd.split()[0]).name
        specs.append(
            DaemonSpec(
                cmd=cmd,
                host=element.findtext("host", "").strip(),
                output=element.findtext("output", "").strip() or f"{program}.log",
                pid_file=element.findtext("pid_file", "").strip() or f"{program}.pid",
                disabled=element.findtext("disabled", "0").strip() not in ("", "0"),
            )
        )
    return specs
