"""Composes the daily score tables from the staged history, as of one date.

    inputs = staged_inputs(staging_dir, as_of)       # orders, surveys, survey_items, complaints (None: absent)
    tables = daily_scores(**inputs, as_of=as_of, config=config)   # {table name: frame}, SCORE_TABLES

daily_scores in steps, which sharded scoring (shards.py) reuses: Cronbach's alpha first (it reads
every survey answer), then the inputs keyed by integers (keyed_inputs), the history-wide scores
(history_scores), every customer's row (kpi.customer_scores) and the tables (score_tables).
How the history is read fast and in little memory: docs/metrics.md, "The daily score tables".

No score from nothing: without staged orders there are no customer, pyramid, model or category
rows; kpi_daily still gets its row from whatever was staged (only when something was).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from pipeline.schemas import SCHEMAS
from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.guards import ClvScores, clv_scores
from pipeline.scoring.alerts import CHECK_COLUMNS, CHECK_SCHEMA, alerts_from_checks, kpi_threshold_checks
from pipeline.scoring.kpi import (
    ORDER_LINE_SCHEMA,
    as_input,
    assemble_kpis,
    company_parts,
    customer_scores,
)
from pipeline.scoring.complaints import COMPLAINT_SCHEMA
from pipeline.scoring.keys import CustomerKeys, counting_keys
from pipeline.scoring.loyalty import category_margins, purchases_as_of
from pipeline.scoring.pyramid import pyramid_summary
from pipeline.scoring.quality import model_quality
from pipeline.scoring.rfm import completed_lines_as_of, purchase_days
from pipeline.scoring.service import ITEM_SCHEMA, RESPONSE_SCHEMA, company_service

log = logging.getLogger(__name__)

SCORE_TABLES = ("customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "kpi_threshold_check",
                "model_quality", "category_margin_daily")
# Staged layers that are not a source kind, with their business key.
STAGED_KEYS = {"survey_answers": ("response_id", "item", "measure")}
Frame = pl.LazyFrame | pl.DataFrame | None


def _batch_files(staging_dir: Path, kind: str, as_of: date) -> list[Path]:
    """The layer's batch files up to the as-of date, in batch order."""
    files = sorted((staging_dir / kind).glob("batch_date=*/part.parquet"))
    return [f for f in files if date.fromisoformat(f.parent.name.split("=", 1)[1]) <= as_of]


def staged_rows(staging_dir: Path, kind: str, as_of: date) -> int:
    """How many rows the layer's batches up to the as-of date hold, superseded versions too (from
    the Parquet footers)."""
    files = _batch_files(staging_dir, kind, as_of)
    return pl.scan_parquet(files).select(pl.len()).collect().item() if files else 0


def staged_history(staging_dir: Path, kind: str, as_of: date) -> pl.LazyFrame:
    """Everything staged for batches up to the as-of date; the latest version of each business key wins
    (latest batch, then latest source row).

    The files are scanned in batch order and stage writes each in source-row order, so the history
    needs no sort: only keys staged more than once are resolved. They are found by hashing the key
    (a hash seen once is a key seen once) and resolved on the key itself, so a hash collision costs
    a little time, never a row.
    """
    files = _batch_files(staging_dir, kind, as_of)
    if not files:
        return pl.LazyFrame()
    key = list(STAGED_KEYS.get(kind) or SCHEMAS[kind].business_key)
    scan = pl.scan_parquet(files)
    hashed = pl.struct(key).hash()
    repeated = (scan.select(hashed.alias("_hash")).sort("_hash")
                .filter(pl.col("_hash") == pl.col("_hash").shift(1)).unique().collect()["_hash"])
    if repeated.is_empty():
        return scan
    rows = scan.with_row_index("_row")
    winners = (rows.filter(hashed.is_in(repeated)).sort("batch_date", "source_row_number", maintain_order=True)
               .unique(subset=key, keep="last").collect()["_row"])
    return rows.filter(~hashed.is_in(repeated) | pl.col("_row").is_in(winners)).drop("_row")


def staged_answers(staging_dir: Path, as_of: date) -> pl.LazyFrame:
    """The survey item answers up to the as-of date. A re-exported response replaces all its answers:
    of a response staged in several batches only its latest batch counts, so an item its new version
    leaves out is gone too.

    A response row's answers share its batch and source row, so only responses staged as more than
    one row (found by their hash, as in staged_history) need resolving; 44M answers at M are never
    sorted.
    """
    files = _batch_files(staging_dir, "survey_answers", as_of)
    if not files:
        return pl.LazyFrame()
    scan = pl.scan_parquet(files)
    response = pl.col("response_id").hash()
    repeated = (scan.select(response.alias("_hash"), "batch_date", "source_row_number").unique()
                .group_by("_hash").len().filter(pl.col("len") > 1).collect(engine="streaming")["_hash"])
    if repeated.is_empty():
        return scan
    key = list(STAGED_KEYS["survey_answers"])
    resolved = (scan.filter(response.is_in(repeated)).sort("batch_date", "source_row_number", maintain_order=True)
                .unique(subset=key, keep="last", maintain_order=True)
                .filter(pl.col("batch_date") == pl.col("batch_date").max().over("response_id")))
    return pl.concat([scan.filter(~response.is_in(repeated)), resolved])


# The order-line columns the scores read (the contract, kpi.ORDER_LINE_SCHEMA, has more): 10M lines at M.
SCORED_ORDER_COLUMNS = ("customer_id", "order_id", "ordered_at", "category", "quantity", "status", "line_amount",
                        "line_cost_amount")


INPUTS = ("orders", "surveys", "survey_items", "complaints")


def staged_scans(staging_dir: Path, as_of: date, inputs: Collection[str] = INPUTS) -> dict[str, pl.LazyFrame | None]:
    """The scoring inputs (all, or those named) as lazy scans of the staged history (None where
    nothing is staged): the order-line columns scored, the other layers' contract columns."""
    scans = {
        "orders": lambda: _contract(staged_history(staging_dir, "orders", as_of),
                                    {c: ORDER_LINE_SCHEMA[c] for c in SCORED_ORDER_COLUMNS}),
        "surveys": lambda: _contract(staged_history(staging_dir, "surveys", as_of), RESPONSE_SCHEMA),
        "survey_items": lambda: _contract(staged_answers(staging_dir, as_of), ITEM_SCHEMA),
        "complaints": lambda: _contract(staged_history(staging_dir, "complaints", as_of), COMPLAINT_SCHEMA),
    }
    return {name: scan() for name, scan in scans.items() if name in inputs}


def staged_inputs(staging_dir: Path, as_of: date, *, lazy: Collection[str] = ("survey_items",)
                  ) -> dict[str, pl.DataFrame | pl.LazyFrame | None]:
    """The scoring inputs (staged_scans) read into memory once, but those named in `lazy`: by default
    the survey answers, which service.cronbach_alpha alone reads (44M rows at M)."""
    frames = {name: frame if frame is None or name in lazy else frame.collect()
              for name, frame in staged_scans(staging_dir, as_of).items()}
    if isinstance(frames.get("surveys"), pl.DataFrame):
        # The company service means add up chunk by chunk: one chunk, not one per batch file, keeps
        # their last bits those of the sorted history (no other float is summed over input rows).
        frames["surveys"] = frames["surveys"].rechunk()
    return frames


def _contract(frame: pl.LazyFrame, schema: dict) -> pl.LazyFrame | None:
    names = frame.collect_schema().names()
    if not names:
        return None
    return frame.select(c for c in schema if c in names)


def present_sources(orders: Frame, surveys: Frame, complaints: Frame) -> dict[str, bool]:
    """Which sources are staged at all (a frame with columns, even without rows)."""
    frames = {"orders": orders, "surveys": surveys, "complaints": complaints}
    return {name: frame is not None and bool(frame.collect_schema().names()) for name, frame in frames.items()}


# kpi_daily counts that read 0 when their source is not staged at all: null there ("not measured").
_ABSENT_SOURCE_COUNTS = {
    "orders": ("completed_orders", "revenue_amount", "customers", "repeat_customers", "clv_customers",
               "previous_period_customers", "retained_customers", "orders_placed", "^customers_.*$", "^revenue_share_.*$"),
    "surveys": ("survey_responses", "nps_responses", "csat_responses"),
    "complaints": ("complaints", "open_complaints"),
}


def daily_scores(
    orders: Frame, surveys: Frame, survey_items: Frame, complaints: Frame, *, as_of: date,
    config: ScoringConfig = ScoringConfig(), fits: dict | None = None, kpi_history: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """Every score table as of the date, keyed by table name (SCORE_TABLES); a table with nothing to
    say is an empty frame, so loading it still replaces the date's partition. `fits`: stored model
    fits to score with instead of fitting inline (fits.latest_fits; None: fit inline)."""
    started = time.perf_counter()
    present = present_sources(orders, surveys, complaints)
    # First, while little else is in memory: Cronbach's alpha reads every survey answer (44M at M).
    service = company_service(as_input(surveys, RESPONSE_SCHEMA), as_input(survey_items, ITEM_SCHEMA), as_of,
                              config.service)
    keyed = keyed_inputs(orders, surveys, complaints, as_of)
    history = history_scores(keyed.lines, keyed.surveys, keyed.complaints, keyed.days, service, as_of=as_of,
                             config=config, fits=fits, present=present)
    customers = keyed.keys.decode(customer_scores(keyed.lines, keyed.surveys, keyed.complaints, as_of, config,
                                                  clv=history.clv, days=keyed.days))
    tables = score_tables(history, customers, as_of=as_of, config=config, kpi_history=kpi_history)
    log.info("scores as of %s in %.2f s: %s", as_of, time.perf_counter() - started,
             {name: frame.height for name, frame in tables.items()})
    return tables


@dataclass(frozen=True)
class KeyedInputs:
    """The inputs read once (every score scans them), keyed by integer customer codes (keys.py)."""

    keys: CustomerKeys
    lines: pl.LazyFrame  # order lines: order ids as counting keys, categories Categorical
    surveys: pl.DataFrame
    complaints: pl.DataFrame
    days: pl.DataFrame  # rfm.purchase_days of the completed lines: models, lifecycle and retention read it
    extra: list[pl.DataFrame | None]  # the `extra` frames, keyed alike


def keyed_inputs(orders: Frame, surveys: Frame, complaints: Frame, as_of: date, *,
                 extra: Sequence[pl.DataFrame | None] = ()) -> KeyedInputs:
    """Orders, surveys and complaints (and any `extra` frame with a customer_id) in memory, with one
    customer code space."""
    keys, (orders, surveys, complaints, *extra) = CustomerKeys.encode([
        *(as_input(frame, schema).collect()
          for frame, schema in ((orders, ORDER_LINE_SCHEMA), (surveys, RESPONSE_SCHEMA), (complaints, COMPLAINT_SCHEMA))),
        *extra,
    ])
    # A handful of categories: a Categorical counts and groups them on integers too.
    lines = as_input(orders.with_columns(counting_keys(orders["order_id"]), pl.col("category").cast(pl.Categorical)),
                     ORDER_LINE_SCHEMA)
    days = purchase_days(completed_lines_as_of(lines, as_of)).collect()
    return KeyedInputs(keys, lines, surveys, complaints, days, extra)


@dataclass(frozen=True)
class HistoryScores:
    """What is computed over the whole history rather than per customer: the CLV fits (with every
    customer's CLV scores), model_quality, the category margins and the company parts of kpi_daily
    (kpi.company_parts). A sharded run (shards.py) computes it once for all its shards."""

    present: dict[str, bool]  # which sources are staged at all
    clv: ClvScores
    model_quality: pl.DataFrame
    categories: pl.DataFrame
    company: dict[str, pl.DataFrame]


def history_scores(
    lines: pl.LazyFrame, surveys: Frame, complaints: Frame, days: pl.DataFrame, service: pl.DataFrame, *,
    as_of: date, config: ScoringConfig, fits: dict | None, present: dict[str, bool],
) -> HistoryScores:
    """The history-wide scores from the order lines (in memory, or a lazy scan of a large history:
    every step is an aggregate), their rfm.purchase_days and the company service row."""
    clv = clv_scores(days, as_of, config.clv, fitted=fits)  # fitted once: scores and model_quality
    for fit in clv.fits.iter_rows(named=True):
        log.info("%s fit as of %s: %s (%s, history to %s), %s customers, %.2f s", fit["model"], as_of, fit["status"],
                 fit["fit_source"], fit["observation_end"], fit["n_customers"], fit["elapsed_seconds"] or 0.0)
    categories = category_margins(purchases_as_of(lines, as_of), as_of)
    company = company_parts(lines, surveys, None, complaints, as_of, config, days=days, categories=categories,
                            service=service)
    return HistoryScores(present, clv, model_quality(days, as_of, config.clv, clv.fits), categories, company)


def score_tables(history: HistoryScores, customers: pl.DataFrame, *, as_of: date, config: ScoringConfig,
                 kpi_history: pl.DataFrame | None) -> dict[str, pl.DataFrame]:
    """The score tables (SCORE_TABLES) from the history-wide scores and every customer's row."""
    present = history.present
    tables = {
        "customer_score_daily": customers,
        "customer_pyramid_daily": pyramid_summary(customers.select("customer_id", "window_spend_amount", "pyramid_tier"),
                                                  as_of),
        "model_quality": history.model_quality,
        "category_margin_daily": history.categories,
    }
    if not present["orders"]:
        tables = {name: frame.clear() for name, frame in tables.items()}
    kpis = assemble_kpis(history.company, customers, as_of, config)
    absent = [c for source, columns in _ABSENT_SOURCE_COUNTS.items() if not present[source] for c in columns]
    if absent:
        kpis = kpis.with_columns(pl.when(pl.lit(False)).then(pl.col(absent)))  # null, same names and types
    if not any(present.values()):
        kpis = kpis.clear()
    tables["kpi_daily"] = kpis
    # kpi_history: earlier kpi_daily rows for the dynamic thresholds (pipeline/scoring/alerts.py).
    checks = (kpi_threshold_checks(kpis, config.kpi_thresholds, kpi_history) if kpis.height
              else pl.DataFrame(schema=CHECK_SCHEMA))
    tables["kpi_threshold_check"] = checks.select(CHECK_COLUMNS)
    tables["kpi_alert"] = alerts_from_checks(checks)
    return {name: tables[name] for name in SCORE_TABLES}

