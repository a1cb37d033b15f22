"""Who may read and write what: the project owner, and the web server's own user.

On a real server the daemons and bin/ tools run as the project owner, while Apache
(the master page, the scheduler, file_upload_handler, the remote-submission pages)
runs as `www-data`. File modes then decide what works. The sandbox does the same when
it is started as root: its HTTP side drops to the system user `WEB_USER` (made with
useradd if missing), and make_project gives the project a real project's modes:

- upload/ belongs to the web user's group and is group-writable (setgid, so the
  hashed subdirectories inherit the group): file_upload_handler writes there;
- download/ belongs to that group too but is NOT group-writable, as make_project
  leaves it: the web side can read staged files (if their own mode lets it) but
  job_file.php cannot upload into it until the admin runs `GRANT_DOWNLOAD_COMMAND`;
- db/ (the SQLite file standing in for MySQL, which both users reach over a socket)
  is writable by both.

Run as another user, the sandbox cannot switch users: everything then runs as that
user, and file modes matter only as they do for one user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import DB_DIR, WEB_USER

if TYPE_CHECKING:
    from .layout import Project

#: What a project admin runs, in the project directory, to let the web server write
#: download/ (job_file.php's input uploads need it).
GRANT_DOWNLOAD_COMMAND = "chmod -R g+w download"


class WebUserError(Exception):
    """The web user cannot be made, or cannot reach the project."""


def separate_web_user() -> bool:
    """True when the HTTP side runs as its own user (only root can switch users)."""
    return os.geteuid() == 0


def ensure_web_user() -> pwd.struct_passwd:
    """The web user's account, created as a system user with no login if missing."""
    try:
        return pwd.getpwnam(WEB_USER)
    except KeyError:
        pass
    run = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            WEB_USER,
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode and "already exists" not in run.stderr:
        raise WebUserError(f"useradd {WEB_USER} failed: {run.stderr.strip()}")
    return pwd.getpwnam(WEB_USER)


def _share_with_web_group(path: Path, gid: int, mode: int) -> None:
    os.chown(path, -1, gid)
    path.chmod(mode)


def set_project_modes(project: Project) -> None:
    """Give a new project a real project's ownership and modes (see the module doc)."""
    if not separate_web_user():
        return
    gid = ensure_web_user().pw_gid
    _share_with_web_group(project.upload_dir, gid, 0o2775)
    _share_with_web_group(project.download_dir, gid, 0o2755)
    _share_with_web_group(project.root / DB_DIR, gid, 0o2770)
    for path in (project.db_path, project.db_up_file):
        _share_with_web_group(path, gid, 0o660)


def mkdir_like_parent(directory: Path) -> None:
    """Make a hashed download/upload subdirectory with its parent's mode.

    So that after `GRANT_DOWNLOAD_COMMAND` later subdirectories are group-writable too,
    as they are on a server whose users work with umask 002.
    """
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(stat.S_IMODE(directory.parent.stat().st_mode))


def grant_download_write(project: Project) -> None:
    """What `GRANT_DOWNLOAD_COMMAND` does: download/ and its subdirectories g+w."""
    for directory in (project.download_dir, *project.download_dir.rglob("*")):
        if directory.is_dir():
            directory.chmod(stat.S_IMODE(directory.stat().st_mode) | stat.S_IWGRP)


def unreachable_parent(path: Path, account: pwd.struct_passwd) -> Path | None:
    """The first directory on the way to `path` that `account` may not enter."""
    groups = {account.pw_gid, *(g.gr_gid for g in grp.getgrall() if account.pw_name in g.gr_mem)}
    for directory in [*reversed(path.parents), path]:
        info = directory.stat()
        if info.st_uid == account.pw_uid:
            allowed = info.st_mode & stat.S_IXUSR
        elif info.st_gid in groups:
            allowed = info.st_mode & stat.S_IXGRP
        else:
            allowed = info.st_mode & stat.S_IXOTH
        if not allowed:
            return directory
    return None


def check_web_reachable(project: Project) -> None:
    """Refuse to start a web side that could not read its own project."""
    if not separate_web_user():
        return
    blocked = unreachable_parent(project.root, ensure_web_user())
    if blocked is not None:
        mode = stat.S_IMODE(blocked.stat().st_mode)
        raise WebUserError(
            f"the web user {WEB_USER} cannot enter {blocked} (mode {mode:04o}), so it"
            f" cannot serve {project.root}; put the project under directories every user"
            " may enter (mode 0755), e.g. not below /root or pytest's tmp_path"
        )


def drop_to_web_user() -> None:
    """Become the web user (the HTTP side calls it once its port is bound)."""
    account = ensure_web_user()
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.umask(0o022)


@contextmanager
def reachable_temp_dir(prefix: str = "pymw-sandbox-") -> Iterator[Path]:
    """A temporary directory the web user can enter, removed afterwards.

    For tests and benchmarks: pytest's tmp_path and tempfile's directories are mode
    0700, which a web side running as another user cannot enter.
    """
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
