"""`crm backfill`: crm_daily for each date of a range, oldest first, in this process (no scheduler).

Resumable: a date is done when its load committed, which the warehouse itself records (etl_run is
written in the load's transaction), so an interrupted or failed backfill picks up at the first date
whose load did not commit. `reprocess` runs every date again. The first date that fails stops the
backfill: later dates load incrementally after it, so they must not run before it.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TextIO

import sqlalchemy as sa

from pipeline.warehouse.failpoints import failpoint

# CRM_FAILPOINT=backfill:after_date kills the backfill right after the first date committed (tests).
AFTER_DATE = "backfill:after_date"


@dataclass(frozen=True)
class DateOutcome:
    state: str  # the DAG run's final state, "success" when it worked
    cause: str | None = None  # why it did not: the task's last error line


@dataclass
class BackfillResult:
    dates: list[date]
    skipped: list[date] = field(default_factory=list)  # already done before this backfill started
    ran: list[date] = field(default_factory=list)
    failed: date | None = None
    outcome: DateOutcome | None = None  # of the failed date

    @property
    def ok(self) -> bool:
        return self.failed is None


def dates_between(start: date, end: date) -> list[date]:
    if start > end:
        raise ValueError(f"--start {start} is after --end {end}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def done_dates(conn: sa.Connection, start: date, end: date) -> set[date]:
    """Run dates in [start, end] whose load committed (sql/queries/done_run_dates.sql)."""
    from pipeline.warehouse import sql_text

    return set(conn.execute(sa.text(sql_text("queries/done_run_dates")), {"start": start, "end": end}).scalars())


def backfill(dates: list[date], done: set[date], run: Callable[[date], DateOutcome],
             is_done: Callable[[date], bool], *, reprocess: bool = False, progress: TextIO | None = None
             ) -> BackfillResult:
    """Runs `run` for each date not in `done` (every date with `reprocess`), in order, and stops at
    the first that fails or whose success the warehouse does not confirm (`is_done`)."""
    result = BackfillResult(dates=dates, skipped=[] if reprocess else [d for d in dates if d in done])
    pending = [d for d in dates if d not in result.skipped]
    with progress_bar(len(dates), len(result.skipped), progress) as bar:
        for day in pending:
            bar.set_postfix_str(f"running {day}", refresh=True)
            outcome = run(day)
            if outcome.state == "success" and not is_done(day):
                outcome = DateOutcome(outcome.state, "the run succeeded but its load did not commit (no etl_run row)")
            if outcome.state != "success" or outcome.cause:
                result.failed, result.outcome = day, outcome
                bar.set_postfix_str(f"{day} failed", refresh=True)
                return result
            result.ran.append(day)
            bar.update(1)
            failpoint(AFTER_DATE)
        bar.set_postfix_str("done", refresh=True)
    return result


@contextmanager
def progress_bar(total: int, initial: int, file: TextIO | None) -> Iterator:
    """tqdm bar of dates done / total with the current date, elapsed and ETA; redrawn every second so
    the elapsed time moves while one date runs (a date takes from seconds to minutes)."""
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, unit="date", file=file, dynamic_ncols=True, mininterval=0.5,
               bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} dates [{elapsed}<{remaining}{postfix}]")
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(1.0):
            bar.refresh()

    # Only on a terminal: in a log file every redraw would be another line.
    ticker = threading.Thread(target=tick, name="backfill-progress", daemon=True)
    if _is_terminal(file or sys.stderr):
        ticker.start()
    try:
        yield bar
    finally:
        stop.set()
        if ticker.is_alive():
            ticker.join()
        bar.close()


def _is_terminal(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):
        return False
