"""One day of crm_daily as its tasks run it, without Airflow: the same functions of pipeline/tasks.py in
the DAG's order (extract and stage per source, score, load; the report task changes no table), so a
fault test can put a fault between any two of them, or run them in a process of its own:

    python -m tests.faults.driver [--load-only] HOME WAREHOUSE_URL DAY [DAY ...]

prints one JSON line per day ({"day", "ok", "error"}) and stops at the first that fails (exit 1).
--load-only retries just the load task, from what the day's stage and score tasks left in the lakes,
as an Airflow retry of that task would. The environment (CRM_FAILPOINT, CRM_FAILPOINT_PAUSE, a mount
namespace...) is the caller's.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from datetime import date
from pathlib import Path

import polars as pl

from pipeline.kinds import KINDS

SALT = "test-salt"


@contextlib.contextmanager
def crm_environment(home: Path, url: str, sources: Path | None = None):
    """The variables a worker of this CRM_HOME would have (sources.yml expands ${CRM_HOME} itself)."""
    values = {"CRM_HOME": str(home), "CRM_WAREHOUSE_URL": url, "CRM_PII_SALT": SALT}
    if sources:
        values["CRM_SOURCES"] = str(sources)
    saved = {k: os.environ.get(k) for k in [*values, "CRM_SOURCES"]}
    os.environ.pop("CRM_SOURCES", None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def extract_and_stage(home: Path, url: str, day: date, sources: Path | None = None) -> list[dict]:
    """The extract and stage tasks of every source; returns what the stage tasks hand the load."""
    from pipeline.settings import load_settings
    from pipeline.tasks import extract_source, stage_source

    with crm_environment(home, url, sources):
        settings = load_settings()
        return [stage_source(kind, extract_source(kind, day, settings), day, settings) for kind in KINDS]


def score_and_load(home: Path, url: str, day: date, staged: list[dict], sources: Path | None = None) -> dict:
    from pipeline.settings import load_settings
    from pipeline.tasks import load_day, score_day

    with crm_environment(home, url, sources):
        settings = load_settings()
        return load_day(day, staged, score_day(day, settings), settings)


def run_day(home: Path, url: str, day: date, sources: Path | None = None) -> list[dict]:
    staged = extract_and_stage(home, url, day, sources)
    score_and_load(home, url, day, staged, sources)
    return staged


def load_again(home: Path, url: str, day: date, sources: Path | None = None) -> dict:
    """The load task once more, with the inputs its first try had: the batches the day's stage tasks
    reported (their reconciliation files) and the day's scores."""
    from pipeline.settings import load_settings
    from pipeline.tasks import load_day

    with crm_environment(home, url, sources):
        settings = load_settings()
        staged = []
        for kind in KINDS:
            recon = settings.lake("reconciliation") / kind / f"run_date={day.isoformat()}" / "part.parquet"
            dates = pl.read_parquet(recon)["batch_date"] if recon.exists() else []
            staged.append({"kind": kind, "batch_dates": sorted(d.isoformat() for d in dates)})
        return load_day(day, staged, {"path": str(settings.lake("scores") / f"as_of_date={day.isoformat()}")}, settings)


def main(argv: list[str]) -> int:
    load_only = argv[0] == "--load-only"
    home, url, *days = argv[1:] if load_only else argv
    sources = Path(os.environ["CRM_SOURCES"]) if os.environ.get("CRM_SOURCES") else None
    failed = False
    for text in days:
        try:
            (load_again if load_only else run_day)(Path(home), url, date.fromisoformat(text), sources)
            line = {"day": text, "ok": True, "error": None}
        except Exception as exc:  # the test reads the error; the traceback goes to stderr
            import traceback

            traceback.print_exc()
            line, failed = {"day": text, "ok": False, "error": f"{type(exc).__name__}: {exc}"}, True
        print(json.dumps(line), flush=True)
        if failed:
            break
    return 1 if failed else 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(code)  # skips DuckDB's noisy teardown reports (see pipeline/cli.py entry_point)
