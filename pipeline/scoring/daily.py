"""Composes the daily score tables from the staged history, as of one date.

    inputs = staged_inputs(staging_dir, as_of)       # orders, surveys, survey_items, complaints (None: absent)
    tables = daily_scores(**inputs, as_of=as_of, config=config)   # {table name: frame}, SCORE_TABLES

No score from nothing: without staged orders there are no customer, pyramid, model or category
rows; kpi_daily still gets its row from whatever was staged (only when something was).
"""
from __future__ import annotations

import logging
import time
from datetime import date
from pathlib import Path

import polars as pl

from pipeline.schemas import SCHEMAS
from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.guards import clv_scores
from pipeline.scoring.kpi import (
    ALERT_SCHEMA,
    ORDER_LINE_SCHEMA,
    as_input,
    company_kpis,
    customer_scores,
    kpi_alerts,
)
from pipeline.scoring.complaints import COMPLAINT_SCHEMA
from pipeline.scoring.loyalty import category_margins, purchases_as_of
from pipeline.scoring.pyramid import pyramid_summary
from pipeline.scoring.quality import model_quality
from pipeline.scoring.rfm import completed_lines_as_of
from pipeline.scoring.service import ITEM_SCHEMA, RESPONSE_SCHEMA

log = logging.getLogger(__name__)

SCORE_TABLES = ("customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "model_quality",
                "category_margin_daily")
# Staged layers that are not a source kind, with their business key.
STAGED_KEYS = {"survey_answers": ("response_id", "item", "measure")}
Frame = pl.LazyFrame | pl.DataFrame | None


def staged_history(staging_dir: Path, kind: str, as_of: date) -> pl.LazyFrame:
    """Everything staged for batches up to the as-of date; the latest version of each business key wins."""
    files = sorted((staging_dir / kind).glob("batch_date=*/part.parquet"))
    files = [f for f in files if date.fromisoformat(f.parent.name.split("=", 1)[1]) <= as_of]
    if not files:
        return pl.LazyFrame()
    key = list(STAGED_KEYS.get(kind) or SCHEMAS[kind].business_key)
    return (
        pl.scan_parquet(files)
        .sort("batch_date", "source_row_number")
        .unique(subset=key, keep="last", maintain_order=True)
    )


def staged_inputs(staging_dir: Path, as_of: date) -> dict[str, pl.DataFrame | None]:
    """The scoring inputs, read once: None where nothing is staged. Only the contract columns are kept."""
    answers = staged_history(staging_dir, "survey_answers", as_of)
    if answers.collect_schema():
        # A re-exported response replaces all its answers: an item its new version leaves out is gone too.
        answers = answers.filter(pl.col("batch_date") == pl.col("batch_date").max().over("response_id"))
    inputs = {
        "orders": (staged_history(staging_dir, "orders", as_of), ORDER_LINE_SCHEMA),
        "surveys": (staged_history(staging_dir, "surveys", as_of), RESPONSE_SCHEMA),
        "survey_items": (answers, ITEM_SCHEMA),
        "complaints": (staged_history(staging_dir, "complaints", as_of), COMPLAINT_SCHEMA),
    }
    return {name: _collected(frame, schema) for name, (frame, schema) in inputs.items()}


def _collected(frame: pl.LazyFrame, schema: dict) -> pl.DataFrame | None:
    names = frame.collect_schema().names()
    if not names:
        return None
    return frame.select(c for c in schema if c in names).collect()


def _present(frame: pl.DataFrame | None) -> bool:
    return frame is not None and bool(frame.columns)


# kpi_daily counts that read 0 when their source is not staged at all: null there ("not measured").
_ABSENT_SOURCE_COUNTS = {
    "orders": ("completed_orders", "revenue_amount", "customers", "repeat_customers", "clv_customers",
               "previous_period_customers", "retained_customers", "orders_placed", "^customers_.*$", "^revenue_share_.*$"),
    "surveys": ("survey_responses", "nps_responses", "csat_responses"),
    "complaints": ("complaints", "open_complaints"),
}


def daily_scores(
    orders: Frame, surveys: Frame, survey_items: Frame, complaints: Frame, *, as_of: date,
    config: ScoringConfig = ScoringConfig(),
) -> dict[str, pl.DataFrame]:
    """Every score table as of the date, keyed by table name (SCORE_TABLES); a table with nothing to
    say is an empty frame, so loading it still replaces the date's partition."""
    orders, surveys, survey_items, complaints = (
        frame.collect() if isinstance(frame, pl.LazyFrame) else frame  # read once: every score scans them
        for frame in (orders, surveys, survey_items, complaints)
    )
    present = {"orders": _present(orders), "surveys": _present(surveys), "complaints": _present(complaints)}
    lines = as_input(orders, ORDER_LINE_SCHEMA)
    completed = completed_lines_as_of(lines, as_of)
    started = time.perf_counter()
    clv = clv_scores(completed, as_of, config.clv)  # fitted once: scores and model_quality
    for fit in clv.fits.iter_rows(named=True):
        log.info("%s fit as of %s: %s, %s customers, %.2f s", fit["model"], as_of, fit["status"], fit["n_customers"],
                 fit["elapsed_seconds"] or 0.0)
    customers = customer_scores(lines, surveys, complaints, as_of, config, clv=clv)
    tables = {
        "customer_score_daily": customers,
        "customer_pyramid_daily": pyramid_summary(customers.select("customer_id", "window_spend_amount", "pyramid_tier"),
                                                  as_of),
        "model_quality": model_quality(completed, as_of, config.clv, clv.fits),
        "category_margin_daily": category_margins(purchases_as_of(lines, as_of), as_of),
    }
    if not present["orders"]:
        tables = {name: frame.clear() for name, frame in tables.items()}
    kpis = company_kpis(lines, surveys, survey_items, complaints, as_of, config, customers=customers)
    absent = [c for source, columns in _ABSENT_SOURCE_COUNTS.items() if not present[source] for c in columns]
    if absent:
        kpis = kpis.with_columns(pl.when(pl.lit(False)).then(pl.col(absent)))  # null, same names and types
    if not any(present.values()):
        kpis = kpis.clear()
    tables["kpi_daily"] = kpis
    tables["kpi_alert"] = kpi_alerts(kpis, config.kpi_thresholds) if kpis.height else pl.DataFrame(schema=ALERT_SCHEMA)
    log.info("scores as of %s in %.2f s: %s", as_of, time.perf_counter() - started,
             {name: frame.height for name, frame in tables.items()})
    return {name: tables[name] for name in SCORE_TABLES}

