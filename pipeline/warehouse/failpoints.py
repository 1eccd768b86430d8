"""Named crash points for the fault-injection tests: CRM_FAILPOINT=<name> makes the process SIGKILL
itself when it reaches that point, the same as a kill from outside at that instant but repeatable.
CRM_FAILPOINT_PAUSE=<name> instead holds the process there (say, inside the load's transaction) while
a test does something to the world around it, such as crashing the database server.
Unset (always, outside those tests) it costs two environment lookups."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

POINTS = ("load:mid_copy", "load:between_tables", "load:before_commit")
PAUSE_TIMEOUT_S = 300


def failpoint(name: str) -> None:
    if os.environ.get("CRM_FAILPOINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("CRM_FAILPOINT_PAUSE") == name:
        _pause(name, Path(os.environ["CRM_FAILPOINT_DIR"]))


def _pause(name: str, folder: Path) -> None:
    """Once per process: writes <folder>/<name>.reached, then waits for <folder>/<name>.resume."""
    os.environ.pop("CRM_FAILPOINT_PAUSE")  # a point inside a loop holds only its first pass
    (folder / f"{name}.reached").write_text(str(os.getpid()))
    deadline = time.monotonic() + PAUSE_TIMEOUT_S
    while not (folder / f"{name}.resume").exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"failpoint {name}: nobody resumed it within {PAUSE_TIMEOUT_S} s")
        time.sleep(0.05)
