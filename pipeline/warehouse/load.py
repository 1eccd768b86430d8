"""Loads one run's lake output into the warehouse in a single transaction.

Order inside the transaction:
1. the run's batch partitions of stg_ tables, quarantine and audit tables are replaced;
2. (under a warehouse-wide lock) the fct_ rows of the keys those batches touch are rebuilt;
3. the score tables' as-of partition is replaced, dim_customer's history is rebuilt from that date
   on, and dim_date is refreshed.
A crash anywhere leaves the previous state: nothing commits until the end. Loads of one date queue
behind a per-date lock; loads of different dates run their staging loads side by side and take
turns for the derived tables, which several dates share.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from pipeline.extract import temporary_path, writing
from pipeline.scoring.daily import SCORE_TABLES, staged_history
from pipeline.settings import Settings
from pipeline.warehouse import run_script, sql_text
from pipeline.warehouse.failpoints import failpoint
from pipeline.warehouse.loader import replace_partitions, replace_partitions_from_parquet

# Source kind: (staged lake layer, staging table, the touched-key scripts and fact rebuild scripts).
STAGING = {
    "customers": [("customers", "stg_customer")],
    "orders": [("orders", "stg_order_line")],
    "surveys": [("surveys", "stg_survey_response"), ("survey_answers", "stg_survey_answer")],
    "complaints": [("complaints", "stg_complaint")],
}
TOUCHED = {"orders": "touched_order_line", "surveys": "touched_survey_response", "complaints": "touched_complaint"}
FACT_SCRIPTS = {"orders": ("fct_order_line", "fct_order"), "surveys": ("fct_survey_response",),
                "complaints": ("fct_complaint",)}
_DERIVED_LOCK_KEY = 0x63726E  # pg_advisory_xact_lock key for the tables several dates share


def load_run(conn: sa.Connection, settings: Settings, run_date: date, staged: list[dict], scores_dir: str | None
             ) -> dict[str, int]:
    with _unordered_inserts(conn):
        return _load_run(conn, settings, run_date, staged, scores_dir)


@contextmanager
def _unordered_inserts(conn: sa.Connection):
    """DuckDB inserts on every thread when it need not keep the rows in insertion order: half the
    time of the load's large inserts at M. The tables are sets (every query that needs an order
    says so), so only their physical order changes. A global setting: back to the default after."""
    if conn.dialect.name != "duckdb":
        yield
        return
    conn.exec_driver_sql("SET preserve_insertion_order = false")
    yield  # a failed load's connection is discarded, its database instance with it
    conn.exec_driver_sql("RESET preserve_insertion_order")


def _load_run(conn: sa.Connection, settings: Settings, run_date: date, staged: list[dict], scores_dir: str | None
              ) -> dict[str, int]:
    _lock(conn, run_date.toordinal())
    loaded: dict[str, int] = {}
    kinds = [result["kind"] for result in staged if result["batch_dates"]]
    for result in staged:
        if result["batch_dates"]:
            loaded |= _load_batches(conn, settings, result, run_date)
    _lock(conn, _DERIVED_LOCK_KEY)
    if "customers" in kinds:
        loaded["restricted.customer_pii"] = _load_customer_pii(conn, settings)
    for kind in kinds:
        for script in FACT_SCRIPTS.get(kind, ()):
            run_script(conn, f"transforms/{script}")
            failpoint("load:between_tables")
    if scores_dir:
        for table in SCORE_TABLES:
            loaded[table] = replace_partitions_from_parquet(conn, table, [Path(scores_dir) / f"{table}.parquet"],
                                                            key="as_of_date", keys=[run_date])
    run_script(conn, "transforms/dim_customer", as_of=run_date)
    run_script(conn, "transforms/dim_customer_attributes")
    loaded["dim_date"] = replace_partitions(conn, "dim_date", calendar(*_date_span(conn, run_date)), key=None)
    # In this transaction, so a date is recorded as done (crm backfill skips it) exactly when its tables are.
    replace_partitions(conn, "etl_run", run_record(run_date, staged, loaded), key="run_date", keys=[run_date])
    failpoint("load:before_commit")
    return loaded


def _load_customer_pii(conn: sa.Connection, settings: Settings) -> int:
    """The latest contact data in full, whatever date is loading (a backfill must not roll it back):
    shared by every date, so replaced under the shared lock. Streamed through a file beside the
    staged customers, so a long history's customers (10M at L) are never in memory beside the
    warehouse's own buffers."""
    staging = settings.lake("staging")
    path = temporary_path(staging / "customer_pii.parquet")
    with writing(path, path):
        staged_history(staging, "customers", date.max).sink_parquet(path)
    try:
        return replace_partitions_from_parquet(conn, "restricted.customer_pii", [path], key=None)
    finally:
        path.unlink(missing_ok=True)


def run_record(run_date: date, staged: list[dict], loaded: dict[str, int]) -> pl.DataFrame:
    """etl_run's row for the run."""
    return pl.DataFrame({"run_date": [run_date], "loaded_batches": [sum(len(r["batch_dates"]) for r in staged)],
                         "scored_customers": [loaded.get("customer_score_daily", 0)]})


def _lock(conn: sa.Connection, key: int) -> None:
    """Transaction-scoped PostgreSQL advisory lock; DuckDB's file lock already serializes writers."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _load_batches(conn: sa.Connection, settings: Settings, result: dict, run_date: date) -> dict[str, int]:
    kind, dates = result["kind"], result["batch_dates"]
    days = [date.fromisoformat(d) for d in dates]
    touched = TOUCHED.get(kind)
    if touched:
        run_script(conn, f"transforms/{touched}", dates=days)  # the keys the batches held before
    loaded = {}
    for layer, table in STAGING[kind]:
        files = partition_files(settings.lake("staging") / layer, dates)
        loaded[table] = replace_partitions_from_parquet(conn, table, files, key="batch_date", keys=days)
        failpoint("load:between_tables")
    if touched:
        run_script(conn, f"transforms/{touched}", dates=days)  # and the keys they hold now
    scope = sa.column("source") == kind
    quarantine = partition_files(settings.lake("quarantine") / kind, dates)
    loaded[f"quarantine[{kind}]"] = replace_partitions_from_parquet(conn, "quarantine", quarantine, key="batch_date",
                                                                    keys=days, scope=scope)
    run_key = f"run_date={run_date.isoformat()}/part.parquet"
    recon = pl.read_parquet(settings.lake("reconciliation") / kind / run_key)
    replace_partitions(conn, "etl_batch", recon, key="batch_date", keys=days, scope=scope)
    results = pl.read_parquet(settings.lake("dq_results") / kind / run_key)
    replace_partitions(conn, "dq_validation_result", results, key="run_date", keys=[run_date], scope=scope)
    return loaded


def partition_files(root: Path, dates: list[str]) -> list[Path]:
    """The layer's files of those batch dates (a batch with no rows in the layer has none)."""
    files = [root / f"batch_date={d}" / "part.parquet" for d in dates]
    return [f for f in files if f.exists()]


def _date_span(conn: sa.Connection, run_date: date) -> tuple[date, date]:
    first, last = conn.execute(sa.text(sql_text("queries/date_span"))).one()
    return min(first or run_date, run_date), max(last or run_date, run_date)


def calendar(first: date, last: date) -> pl.DataFrame:
    """dim_date's rows, one per day from first to last."""
    days = pl.date_range(first, last, timedelta(days=1), eager=True).alias("date_day")
    return pl.DataFrame(days).with_columns(
        pl.col("date_day").dt.year().cast(pl.Int16).alias("year_number"),
        pl.col("date_day").dt.quarter().cast(pl.Int16).alias("quarter_number"),
        pl.col("date_day").dt.month().cast(pl.Int16).alias("month_number"),
        pl.col("date_day").dt.strftime("%B").alias("month_name"),
        pl.col("date_day").dt.month_start().alias("month_start_date"),
        pl.col("date_day").dt.iso_year().cast(pl.Int16).alias("iso_year_number"),
        pl.col("date_day").dt.week().cast(pl.Int16).alias("iso_week_number"),
        pl.col("date_day").dt.weekday().cast(pl.Int16).alias("iso_day_of_week"),
        pl.col("date_day").dt.strftime("%A").alias("day_name"),
        (pl.col("date_day").dt.weekday() >= 6).alias("is_weekend"),
    )
