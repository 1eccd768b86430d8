"""The functions the crm_daily tasks call. Inputs and outputs are JSON-able paths and counts."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import sqlalchemy as sa

from pipeline.errors import fail_fast_on_bad_input
from pipeline.extract import extract, write_atomic
from pipeline.scoring.config import load_scoring_config
from pipeline.scoring.daily import SCORE_TABLES, daily_scores, staged_history, staged_inputs
from pipeline.schemas import UTC_TS
from pipeline.settings import Settings, load_settings
from pipeline.sources import load_sources, load_sources_file
from pipeline.stage import (
    StageContext, batch_counts, check_quarantine_share, stage, write_partitions,
)
from pipeline.validate import RESULT_SCHEMA, ROW_ID
from pipeline.warehouse import ensure_schema, make_engine, sql_text
from pipeline.warehouse.loader import replace_partitions

log = logging.getLogger(__name__)
FACT_TABLES = {"orders": "fct_order_line", "surveys": "fct_survey_response", "complaints": "fct_complaint"}


def interval_end(run_date: date) -> datetime:
    return datetime.combine(run_date + timedelta(days=1), time(), tzinfo=timezone.utc)


def fx_rates(path, base_currency: str) -> pl.DataFrame:
    """The rates table re-based onto the company's base currency."""
    rates = pl.read_csv(path, schema_overrides={"rate_to_base": pl.Float64})
    base = rates.filter(pl.col("currency") == base_currency)["rate_to_base"]
    if base.is_empty():
        raise ValueError(f"{path} has no rate for the base currency {base_currency}")
    return rates.with_columns(pl.col("rate_to_base") / base[0])


@fail_fast_on_bad_input
def extract_source(kind: str, run_date: date, settings: Settings | None = None) -> dict:
    settings = settings or load_settings()
    source = load_sources(settings.sources_file).get(kind)
    if source is None:
        log.info("source %s is not configured; nothing to extract", kind)
        return {"kind": kind, "path": None, "rows": 0, "batches": []}
    engine = make_engine(settings.warehouse_url)
    ensure_schema(engine)
    with engine.connect() as conn:
        watermark = conn.execute(sa.text(sql_text("queries/watermark")), {"source": kind}).scalar()
        owned = set(conn.execute(sa.text(sql_text("queries/batches_of_run")), {"source": kind, "run_date": run_date}).scalars())
    engine.dispose()
    return extract(source, watermark, run_date, settings.lake("landing"), owned)


@fail_fast_on_bad_input
def stage_source(kind: str, extracted: dict, run_date: date, settings: Settings | None = None) -> dict:
    """Standardize and validate the landed rows; write accepted, quarantined and audit lakes."""
    settings = settings or load_settings()
    result = {"kind": kind, "raw": 0, "accepted": 0, "quarantined": 0, "batch_dates": []}
    if not extracted["batches"]:
        return result
    config = load_sources_file(settings.sources_file)
    source = config.sources[kind]
    landed = pl.read_parquet(extracted["path"])
    known, registry = _customer_reference(settings, config.sources, kind, run_date)
    ctx = StageContext(
        source=source,
        interval_end=interval_end(run_date),
        fx_rates=fx_rates(settings.fx_rates_file, config.base_currency or settings.base_currency),
        known_customers=known,
        registry=registry,
        pii_salt=settings.pii_salt,
    )
    run_id = f"{kind}-{run_date.isoformat()}"
    staged = stage(kind, landed, ctx, gx_root=settings.lake("gx"), run_name=run_id) if landed.height else None
    accepted, quarantine = (staged.accepted, staged.quarantine) if staged else (None, None)
    check_quarantine_share(kind, landed.height, quarantine, source.max_quarantine_share)
    dates = [b["batch_date"] for b in extracted["batches"]]
    recon = batch_counts(kind, extracted["batches"], accepted, quarantine).with_columns(pl.lit(run_date).alias("run_date"))
    write_partitions(accepted, settings.lake("staging") / kind, dates)
    write_partitions(quarantine.drop(ROW_ID) if quarantine is not None else None, settings.lake("quarantine") / kind, dates)
    if kind == "surveys":
        write_partitions(staged.answers if staged else None, settings.lake("staging") / "survey_answers", dates)
    results = staged.results if staged else pl.DataFrame(schema=RESULT_SCHEMA)
    audit = {"reconciliation": recon,
             "dq_results": results.with_columns(pl.lit(run_date).alias("run_date"), pl.lit(run_id).alias("run_id"),
                                                pl.lit(kind).alias("source"))}
    for name, frame in audit.items():
        write_atomic(frame, settings.lake(name) / kind / f"run_date={run_date.isoformat()}" / "part.parquet")
    counts = {"raw": landed.height, "accepted": accepted.height if staged else 0,
              "quarantined": quarantine.height if staged else 0}
    log.info("source %s: %d raw = %d accepted + %d quarantined", kind, counts["raw"], counts["accepted"], counts["quarantined"])
    return result | counts | {"batch_dates": dates}


def _customer_reference(settings: Settings, sources: dict, kind: str, run_date: date):
    """(known customer ids, identity registry) for a source: the customer master when there is one;
    without it, the ids seen in orders so far define who is a customer, and there is no registry."""
    if kind == "customers":
        return None, None
    staging = settings.lake("staging")
    if "customers" in sources:
        master = staged_history(staging, "customers", run_date)
        if not master.collect_schema():
            return pl.Series("customer_id", [], dtype=pl.String), None
        registry = master.select("customer_id", "email_hash", "phone_hash").collect()
        return registry["customer_id"], registry
    if kind == "orders":
        return None, None
    orders = staged_history(staging, "orders", run_date)
    if not orders.collect_schema():
        return pl.Series("customer_id", [], dtype=pl.String), None
    return orders.select(pl.col("customer_id").drop_nulls().unique()).collect()["customer_id"], None


def score_day(run_date: date, settings: Settings | None = None) -> dict:
    """Every score table as of the run date from the staged history, one Parquet file each under the
    scores lake; no score from nothing (pipeline/scoring/daily.py). Returns the path and row counts."""
    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    tables = daily_scores(**staged_inputs(settings.lake("staging"), run_date), as_of=run_date, config=config)
    out = settings.lake("scores") / f"as_of_date={run_date.isoformat()}"
    for table, frame in tables.items():
        write_atomic(frame, out / f"{table}.parquet")
    rows = {table: frame.height for table, frame in tables.items()}
    if not rows["customer_score_daily"]:
        log.warning("no customer with a completed order up to %s: no customer scores", run_date)
    return {"as_of_date": run_date.isoformat(), "customers": rows["customer_score_daily"], "path": str(out), "rows": rows}


def load_day(run_date: date, staged: list[dict], scored: dict, settings: Settings | None = None) -> dict:
    """Replaces this run's partitions in every table inside one transaction."""
    settings = settings or load_settings()
    engine = make_engine(settings.warehouse_url)
    ensure_schema(engine)
    loaded: dict[str, int] = {}
    with engine.begin() as conn:
        _serialize_same_date(conn, run_date)
        for result in staged:
            loaded |= _load_source(conn, settings, result, run_date)
        if scored["path"]:
            for table in SCORE_TABLES:
                frame = pl.read_parquet(f"{scored['path']}/{table}.parquet")
                loaded[table] = replace_partitions(conn, table, frame, key="as_of_date", keys=[run_date])
    engine.dispose()
    log.info("loaded %s", loaded)
    return loaded


def _serialize_same_date(conn: sa.Connection, run_date: date) -> None:
    """Two loads of one date queue behind a transaction-scoped lock; DuckDB has a single writer anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": run_date.toordinal()})


def _read_partitions(root, dates: list[str]) -> pl.DataFrame | None:
    files = [root / f"batch_date={d}" / "part.parquet" for d in dates]
    files = [f for f in files if f.exists()]
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical") if files else None


def current_customers(settings: Settings, sources: dict, run_date: date) -> pl.DataFrame:
    """dim_customer's rows: the latest master record per customer, or without a master, one row per
    customer id seen in orders with the country of its latest order."""
    staging = settings.lake("staging")
    if "customers" in sources:
        return staged_history(staging, "customers", run_date).with_columns(pl.lit(True).alias("is_in_master")).collect()
    orders = staged_history(staging, "orders", run_date)
    if not orders.collect_schema():
        return pl.DataFrame()
    return (
        orders.filter(pl.col("customer_id").is_not_null())
        .sort("ordered_at", "batch_date", "source_row_number")
        .group_by("customer_id")
        .agg(pl.col("customer_country").drop_nulls().last().alias("country"), pl.col("batch_date").max(),
             pl.col("load_id").last())
        .with_columns(pl.lit(False).alias("is_in_master"),
                      *(pl.lit(None, t).alias(c) for c, t in (("email_hash", pl.String), ("phone_hash", pl.String),
                        ("is_email_valid", pl.Boolean), ("is_phone_valid", pl.Boolean), ("city", pl.String),
                        ("signed_up_at", UTC_TS))))
        .sort("customer_id")
        .collect()
    )


def _load_source(conn: sa.Connection, settings: Settings, result: dict, run_date: date) -> dict[str, int]:
    kind, dates = result["kind"], result["batch_dates"]
    if not dates:
        return {}
    days = [date.fromisoformat(d) for d in dates]
    scope = sa.column("source") == kind
    sources = load_sources(settings.sources_file)
    loaded = {}
    staging = settings.lake("staging")
    if kind == "customers" or (kind == "orders" and "customers" not in sources):
        current = current_customers(settings, sources, run_date)
        loaded["dim_customer"] = replace_partitions(conn, "dim_customer", current, key=None)
    if kind == "customers":
        loaded["customer_pii"] = replace_partitions(conn, "customer_pii", current, key=None)
    else:
        table = FACT_TABLES[kind]
        loaded[table] = replace_partitions(conn, table, _read_partitions(staging / kind, dates), key="batch_date", keys=days)
    if kind == "surveys":
        answers = _read_partitions(staging / "survey_answers", dates)
        loaded["fct_survey_answer"] = replace_partitions(conn, "fct_survey_answer", answers, key="batch_date", keys=days)
    quarantine = _read_partitions(settings.lake("quarantine") / kind, dates)
    loaded[f"quarantine[{kind}]"] = replace_partitions(conn, "quarantine", quarantine, key="batch_date", keys=days, scope=scope)
    run_key = f"run_date={run_date.isoformat()}/part.parquet"
    recon = pl.read_parquet(settings.lake("reconciliation") / kind / run_key)
    replace_partitions(conn, "etl_batch", recon, key="batch_date", keys=days, scope=scope)
    results = pl.read_parquet(settings.lake("dq_results") / kind / run_key)
    replace_partitions(conn, "dq_validation_result", results, key="run_date", keys=[run_date], scope=scope)
    return loaded
