"""Named crash points for the fault-injection tests: CRM_FAILPOINT=<name> makes the process SIGKILL
itself when it reaches that point, the same as a kill from outside at that instant but repeatable.
Unset (always, outside those tests) it costs one environment lookup."""
from __future__ import annotations

import os
import signal

POINTS = ("load:mid_copy", "load:between_tables", "load:before_commit")


def failpoint(name: str) -> None:
    if os.environ.get("CRM_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
