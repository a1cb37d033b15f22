"""BOINC sandbox: a loopback BOINC project that the real `boinc-client` attaches to.

Stands in for a BOINC server (release 1.6.2, BOINC 8.3), which is not packaged for
Debian: a project directory with the real layout and bin/ tools, daemons, and an HTTP
side speaking the protocol of the real scheduler, upload handler and download server.
Used by the test suite and by users to run a BOINC batch end to end on one machine.

    from pymw.testing.boinc_sandbox import Sandbox
    sandbox = Sandbox.open(directory)        # makes the project if needed
    clients = sandbox.start(clients=1, exit_when_idle=True)
    with Volunteer(sandbox):                 # clients that stay up report lazily
        ...
    sandbox.stop()
"""

from .client import BoincClient
from .sandbox import Sandbox, SandboxError
from .volunteer import Volunteer
from .webuser import reachable_temp_dir

__all__ = ["BoincClient", "Sandbox", "SandboxError", "Volunteer", "reachable_temp_dir"]
