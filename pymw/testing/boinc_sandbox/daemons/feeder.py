"""`feeder`: fills the job cache the scheduler sends from.

Stands in for BOINC's feeder, which copies unsent results into shared memory for the
scheduler CGI. Here the cache is the `result.in_feeder_cache` flag: without a running
feeder, the scheduler has no work to send, as on a real server.
"""

from __future__ import annotations

from ..constants import ServerState
from ..db import Database
from ..layout import Project
from .common import Options, log, main_for


def setup(project: Project, options: Options):
    def one_pass(database: Database) -> bool:
        with database.transaction():
            count = database.connection.execute(
                "UPDATE result SET in_feeder_cache = 1"
                " WHERE server_state = ? AND in_feeder_cache = 0",
                (ServerState.UNSENT,),
            ).rowcount
        if count:
            log(f"added {count} result(s) to the job cache")
        return bool(count)

    return one_pass


main = main_for("feeder", setup, value_options=("allapps", "priority_order"))
