"""Task functions for the BOINC scale tests and benchmark: module-level, so PyMW can send
their source to the volunteers' clients.

A BOINC task runs in `<client data dir>/slots/N/`, so `../../LIAR` is a file in the data
directory of the client running it: a host with that marker returns wrong answers, the
way a broken or malicious volunteer would, and only replication with a quorum can tell.
"""

#: The marker a test puts into one client's data directory to make that host lie.
LIAR_MARKER = "LIAR"


def square_or_lie(x):
    import os

    if os.path.exists(os.path.join("..", "..", "LIAR")):
        return x * x + 1
    return x * x
