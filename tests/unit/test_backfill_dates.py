"""The backfill loop on its own: which dates run, in which order, and where it stops. The real DAG
runs are in tests/integration/test_backfill.py."""
from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
from datetime import date

import pytest

from pipeline.backfill import DateOutcome, backfill, dates_between

D = [date(2025, 12, d) for d in (1, 2, 3, 4)]


class Warehouse:
    """Stands in for etl_run: a date is done once `run` succeeded for it, unless told to lose it."""

    def __init__(self, done=(), fail=(), uncommitted=()):
        self.done, self.fail, self.uncommitted, self.runs = set(done), set(fail), set(uncommitted), []

    def run(self, day: date) -> DateOutcome:
        self.runs.append(day)
        if day in self.fail:
            return DateOutcome("failed", f"ValueError: broken export for {day}")
        if day not in self.uncommitted:
            self.done.add(day)
        return DateOutcome("success")

    def is_done(self, day: date) -> bool:
        return day in self.done


def test_dates_between_is_inclusive_and_ordered():
    assert dates_between(D[0], D[3]) == D
    assert dates_between(D[1], D[1]) == [D[1]]
    with pytest.raises(ValueError, match="after"):
        dates_between(D[3], D[0])


def test_done_dates_are_skipped_and_the_rest_run_in_order():
    wh = Warehouse(done={D[0], D[2]})
    bar = io.StringIO()
    result = backfill(D, set(wh.done), wh.run, wh.is_done, progress=bar)
    assert result.ok and wh.runs == [D[1], D[3]]
    assert (result.skipped, result.ran) == ([D[0], D[2]], [D[1], D[3]])
    assert "4/4 dates" in bar.getvalue() and "2025-12-04" in bar.getvalue()


def test_reprocess_runs_every_date():
    wh = Warehouse(done=set(D))
    result = backfill(D, set(wh.done), wh.run, wh.is_done, reprocess=True, progress=io.StringIO())
    assert result.ok and wh.runs == D and result.skipped == []


def test_the_first_failure_stops_the_backfill_and_a_rerun_resumes_there():
    wh = Warehouse(fail={D[1]})
    result = backfill(D, set(), wh.run, wh.is_done, progress=io.StringIO())
    assert not result.ok and result.failed == D[1] and wh.runs == [D[0], D[1]]
    assert result.outcome.cause == "ValueError: broken export for 2025-12-02"
    wh.fail.clear()
    wh.runs.clear()
    again = backfill(D, set(wh.done), wh.run, wh.is_done, progress=io.StringIO())
    assert again.ok and again.skipped == [D[0]] and wh.runs == D[1:]


def test_a_success_the_warehouse_does_not_confirm_is_a_failure():
    wh = Warehouse(uncommitted={D[0]})
    result = backfill(D, set(), wh.run, wh.is_done, progress=io.StringIO())
    assert result.failed == D[0] and "did not commit" in result.outcome.cause and wh.runs == [D[0]]


INTERRUPTIBLE = """
import time
from pipeline.cli import exit_on_interrupt, output_to
with exit_on_interrupt("stopped; run it again to resume"), output_to(__import__("pathlib").Path(%r)):
    print("ready", flush=True)
    try:
        time.sleep(30)
    except BaseException:  # what Airflow's in-process task runner does with a KeyboardInterrupt
        time.sleep(30)
"""


def test_ctrl_c_stops_at_once_even_where_keyboard_interrupt_is_swallowed(tmp_path):
    log = tmp_path / "run.log"
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTIBLE % str(log)], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 30
    while "ready" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
    assert "stopped; run it again to resume" in proc.stderr.read()  # on the terminal, not in the log
