"""The project database, in SQLite instead of BOINC's MySQL.

Stands in for the BOINC server's MySQL database (schema `db/schema.sql`). Tables and
column names are the real ones, trimmed to what the sandbox's daemons, scheduler and
tools use; state values are those of `constants`. Every process of the sandbox (tools,
daemons, HTTP side) opens the file itself, like BOINC's processes each connect to MySQL;
WAL mode and a busy timeout let them write concurrently. The file lives in the project's
db/ directory, which the project owner and the web user may both write; the database
counts as down while db/mysqld_running is missing (`Project.connect` raises
DatabaseDown), which `Sandbox.database_down()` uses to stand for a stopped MySQL.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS platform (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, user_friendly_name TEXT NOT NULL,
    create_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS app (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, user_friendly_name TEXT NOT NULL,
    create_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS app_version (
    id INTEGER PRIMARY KEY, appid INTEGER NOT NULL, version_num INTEGER NOT NULL,
    platformid INTEGER NOT NULL, plan_class TEXT NOT NULL DEFAULT '',
    xml_doc TEXT NOT NULL, create_time INTEGER NOT NULL,
    UNIQUE (appid, version_num, platformid, plan_class));
CREATE TABLE IF NOT EXISTS user (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email_addr TEXT UNIQUE NOT NULL,
    authenticator TEXT UNIQUE NOT NULL, create_time INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS user_submit (
    user_id INTEGER PRIMARY KEY, submit_all INTEGER NOT NULL DEFAULT 0);
-- per-app submit rights of a user without submit_all
CREATE TABLE IF NOT EXISTS user_submit_app (
    user_id INTEGER NOT NULL, app_id INTEGER NOT NULL, PRIMARY KEY (user_id, app_id));
CREATE TABLE IF NOT EXISTS host (
    id INTEGER PRIMARY KEY, userid INTEGER NOT NULL, create_time INTEGER NOT NULL,
    rpc_seqno INTEGER NOT NULL DEFAULT 0, rpc_time INTEGER NOT NULL DEFAULT 0,
    domain_name TEXT NOT NULL DEFAULT '', p_ncpus INTEGER NOT NULL DEFAULT 1,
    p_fpops REAL NOT NULL DEFAULT 1e9);
CREATE TABLE IF NOT EXISTS batch (
    id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL DEFAULT 0,
    app_id INTEGER NOT NULL DEFAULT 0, name TEXT NOT NULL DEFAULT '',
    create_time INTEGER NOT NULL DEFAULT 0, state INTEGER NOT NULL DEFAULT 0,
    njobs INTEGER NOT NULL DEFAULT 0, fraction_done REAL NOT NULL DEFAULT 0,
    nerror_jobs INTEGER NOT NULL DEFAULT 0, completion_time INTEGER NOT NULL DEFAULT 0,
    expire_time INTEGER NOT NULL DEFAULT 0, est_completion_time INTEGER NOT NULL DEFAULT 0,
    credit_estimate REAL NOT NULL DEFAULT 0, credit_canonical REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS workunit (
    id INTEGER PRIMARY KEY, create_time INTEGER NOT NULL, appid INTEGER NOT NULL,
    name TEXT UNIQUE NOT NULL, xml_doc TEXT NOT NULL, batch INTEGER NOT NULL DEFAULT 0,
    rsc_fpops_est REAL, rsc_fpops_bound REAL, rsc_memory_bound REAL, rsc_disk_bound REAL,
    need_validate INTEGER NOT NULL DEFAULT 0, canonical_resultid INTEGER NOT NULL DEFAULT 0,
    transition_time INTEGER NOT NULL, delay_bound INTEGER NOT NULL,
    error_mask INTEGER NOT NULL DEFAULT 0, file_delete_state INTEGER NOT NULL DEFAULT 0,
    assimilate_state INTEGER NOT NULL DEFAULT 0, min_quorum INTEGER NOT NULL,
    target_nresults INTEGER NOT NULL, max_error_results INTEGER NOT NULL,
    max_total_results INTEGER NOT NULL, max_success_results INTEGER NOT NULL,
    result_template_file TEXT NOT NULL, priority INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS result (
    id INTEGER PRIMARY KEY, create_time INTEGER NOT NULL, workunitid INTEGER NOT NULL,
    server_state INTEGER NOT NULL, outcome INTEGER NOT NULL DEFAULT 0,
    client_state INTEGER NOT NULL DEFAULT 0, hostid INTEGER NOT NULL DEFAULT 0,
    userid INTEGER NOT NULL DEFAULT 0, report_deadline INTEGER NOT NULL DEFAULT 0,
    sent_time INTEGER NOT NULL DEFAULT 0, received_time INTEGER NOT NULL DEFAULT 0,
    name TEXT UNIQUE NOT NULL, exit_status INTEGER NOT NULL DEFAULT 0,
    stderr_out TEXT NOT NULL DEFAULT '', xml_doc_in TEXT NOT NULL,
    cpu_time REAL NOT NULL DEFAULT 0, elapsed_time REAL NOT NULL DEFAULT 0,
    xml_doc_out TEXT NOT NULL DEFAULT '', validate_state INTEGER NOT NULL DEFAULT 0,
    file_delete_state INTEGER NOT NULL DEFAULT 0, appid INTEGER NOT NULL,
    app_version_id INTEGER NOT NULL DEFAULT 0, batch INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 0,
    -- 1 once the feeder has put the result into the job cache the scheduler sends from
    -- (shared memory in real BOINC)
    in_feeder_cache INTEGER NOT NULL DEFAULT 0);
-- per host and app version: the daily quota (sched_version.cpp's daily_quota_exceeded)
CREATE TABLE IF NOT EXISTS host_app_version (
    host_id INTEGER NOT NULL, app_version_id INTEGER NOT NULL,
    max_jobs_per_day INTEGER NOT NULL, n_jobs_today INTEGER NOT NULL DEFAULT 0,
    -- the local day (days since 1970) n_jobs_today counts
    day INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (host_id, app_version_id));
CREATE INDEX IF NOT EXISTS result_wu ON result (workunitid);
CREATE INDEX IF NOT EXISTS result_state ON result (server_state, in_feeder_cache);
CREATE INDEX IF NOT EXISTS wu_transition ON workunit (transition_time);
CREATE INDEX IF NOT EXISTS wu_batch ON workunit (batch);
"""
#: Columns added after the first release of the sandbox (remote job submission), with
#: their declarations: `create_schema` adds them to a database made before.
ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "batch": {
        "njobs": "INTEGER NOT NULL DEFAULT 0",
        "fraction_done": "REAL NOT NULL DEFAULT 0",
        "nerror_jobs": "INTEGER NOT NULL DEFAULT 0",
        "completion_time": "INTEGER NOT NULL DEFAULT 0",
        "expire_time": "INTEGER NOT NULL DEFAULT 0",
        "est_completion_time": "INTEGER NOT NULL DEFAULT 0",
        "credit_estimate": "REAL NOT NULL DEFAULT 0",
        "credit_canonical": "REAL NOT NULL DEFAULT 0",
    },
    "result": {
        "cpu_time": "REAL NOT NULL DEFAULT 0",
        "elapsed_time": "REAL NOT NULL DEFAULT 0",
    },
}


class DatabaseDown(Exception):
    """The database server cannot be reached (MySQL stopped, on a real server)."""


class Database:
    """One connection to the project database; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, timeout=60, isolation_level=None)
        self.connection.row_factory = sqlite3.Row
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA busy_timeout=60000")

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_: object) -> None:
        self.connection.close()

    def create_schema(self) -> None:
        """Create missing tables and columns (a project made by an older sandbox too)."""
        self.connection.executescript(SCHEMA)
        for table, columns in ADDED_COLUMNS.items():
            present = {row["name"] for row in self.all(f"PRAGMA table_info({table})")}
            for name, declaration in columns.items():
                if name not in present:
                    self.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """A write transaction taken up front, so read-modify-write steps don't race."""
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def all(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self.connection.execute(sql, params).fetchall()

    def one(self, sql: str, *params: Any) -> sqlite3.Row | None:
        return self.connection.execute(sql, params).fetchone()

    def execute(self, sql: str, *params: Any) -> int:
        """Run a statement; returns the last row id (for INSERTs)."""
        return self.connection.execute(sql, params).lastrowid or 0

    def insert(self, table: str, **values: Any) -> int:
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        return self.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", *values.values())

    def update(self, table: str, row_id: int, **values: Any) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        self.execute(f"UPDATE {table} SET {assignments} WHERE id = ?", *values.values(), row_id)

    def add_user(self, name: str, email: str, submit_all: bool = False) -> str:
        """Create an account; returns its authenticator (what a volunteer attaches with)."""
        authenticator = secrets.token_hex(16)
        user_id = self.insert(
            "user",
            name=name,
            email_addr=email,
            authenticator=authenticator,
            create_time=int(time.time()),
        )
        if submit_all:
            self.insert("user_submit", user_id=user_id, submit_all=1)
        return authenticator

    def submitter_authenticator(self) -> str:
        """The authenticator of the first account with submit rights."""
        row = self.one(
            "SELECT authenticator FROM user JOIN user_submit ON user.id = user_submit.user_id"
            " WHERE submit_all = 1 ORDER BY user.id LIMIT 1"
        )
        if row is None:
            raise LookupError("no account with submit rights")
        return row["authenticator"]
