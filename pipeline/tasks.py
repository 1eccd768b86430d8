"""The functions the crm_daily tasks call. Inputs and outputs are JSON-able paths and counts."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import sqlalchemy as sa

from pipeline.extract import extract
from pipeline.scoring.daily import score_customers, staged_history
from pipeline.settings import Settings, load_settings
from pipeline.sources import load_sources
from pipeline.stage import (
    StageContext, batch_counts, check_quarantine_share, stage, write_partitions,
)
from pipeline.warehouse import ensure_schema, make_engine, sql_text
from pipeline.warehouse.loader import replace_partitions

log = logging.getLogger(__name__)
FACT_TABLES = {"orders": "fct_order_line", "surveys": "fct_survey_response", "complaints": "fct_complaint"}


def interval_end(run_date: date) -> datetime:
    return datetime.combine(run_date + timedelta(days=1), time(), tzinfo=timezone.utc)


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


def stage_source(kind: str, extracted: dict, run_date: date, settings: Settings | None = None) -> dict:
    """Standardize and validate the landed rows; write accepted, quarantined and audit lakes."""
    settings = settings or load_settings()
    result = {"kind": kind, "raw": 0, "accepted": 0, "quarantined": 0, "batch_dates": []}
    if not extracted["path"]:
        return result
    landed = pl.read_parquet(extracted["path"])
    ctx = StageContext(
        interval_end=interval_end(run_date),
        fx_rates=pl.read_csv(settings.fx_rates_file),
        known_customers=None if kind == "customers" else _known_customers(settings, run_date),
        pii_salt=settings.pii_salt,
    )
    accepted, quarantine, results = stage(kind, landed, ctx)
    source = load_sources(settings.sources_file)[kind]
    check_quarantine_share(kind, landed.height, quarantine, source.max_quarantine_share)
    dates = [b["batch_date"] for b in extracted["batches"]]
    recon = batch_counts(kind, extracted["batches"], accepted, quarantine).with_columns(pl.lit(run_date).alias("run_date"))
    write_partitions(accepted, settings.lake("staging") / kind, dates)
    write_partitions(quarantine.drop("_rid"), settings.lake("quarantine") / kind, dates)
    run_key = f"run_date={run_date.isoformat()}"
    for name, frame in (("reconciliation", recon), ("dq_results", results.with_columns(pl.lit(run_date).alias("run_date"), pl.lit(kind).alias("source")))):
        path = settings.lake(name) / kind / run_key / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
    log.info("source %s: %d raw = %d accepted + %d quarantined", kind, landed.height, accepted.height, quarantine.height)
    return result | {"raw": landed.height, "accepted": accepted.height, "quarantined": quarantine.height, "batch_dates": dates}


def _known_customers(settings: Settings, run_date: date) -> pl.Series:
    history = staged_history(settings.lake("staging"), "customers", run_date)
    if not history.collect_schema():
        return pl.Series("customer_id", [], dtype=pl.String)
    return history.select("customer_id").collect()["customer_id"]


def score_day(run_date: date, settings: Settings | None = None) -> dict:
    """Scores as of the run date from the staged history; scores nothing when there is no order yet."""
    settings = settings or load_settings()
    orders = staged_history(settings.lake("staging"), "orders", run_date)
    out = settings.lake("scores") / f"as_of_date={run_date.isoformat()}"
    if not orders.collect_schema():
        log.warning("no orders staged up to %s: no scores computed", run_date)
        return {"as_of_date": run_date.isoformat(), "customers": 0, "path": None}
    customers, pyramid = score_customers(orders, run_date)
    out.mkdir(parents=True, exist_ok=True)
    customers.write_parquet(out / "customer_score_daily.parquet")
    pyramid.write_parquet(out / "customer_pyramid_daily.parquet")
    return {"as_of_date": run_date.isoformat(), "customers": customers.height, "path": str(out)}


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
            for table in ("customer_score_daily", "customer_pyramid_daily"):
                frame = pl.read_parquet(f"{scored['path']}/{table}.parquet")
                loaded[table] = replace_partitions(conn, table, frame, key="as_of_date", keys=[run_date])
    engine.dispose()
    log.info("loaded %s", loaded)
    return loaded


def _serialize_same_date(conn: sa.Connection, run_date: date) -> None:
    """Two loads of one date queue behind a transaction-scoped lock; DuckDB has a single writer anyway."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": run_date.toordinal()})


def _read_partitions(root, dates: list[str]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(root / f"batch_date={d}" / "part.parquet") for d in dates], how="vertical")


def _load_source(conn: sa.Connection, settings: Settings, result: dict, run_date: date) -> dict[str, int]:
    kind, dates = result["kind"], result["batch_dates"]
    if not dates:
        return {}
    days = [date.fromisoformat(d) for d in dates]
    scope = sa.column("source") == kind
    loaded = {}
    if kind == "customers":
        current = staged_history(settings.lake("staging"), "customers", run_date).collect()
        loaded["dim_customer"] = replace_partitions(conn, "dim_customer", current, key=None)
        loaded["customer_pii"] = replace_partitions(conn, "customer_pii", current, key=None)
    else:
        loaded[FACT_TABLES[kind]] = replace_partitions(
            conn, FACT_TABLES[kind], _read_partitions(settings.lake("staging") / kind, dates), key="batch_date", keys=days
        )
    quarantine = _read_partitions(settings.lake("quarantine") / kind, dates)
    loaded[f"quarantine[{kind}]"] = replace_partitions(conn, "quarantine", quarantine, key="batch_date", keys=days, scope=scope)
    run_key = f"run_date={run_date.isoformat()}/part.parquet"
    recon = pl.read_parquet(settings.lake("reconciliation") / kind / run_key)
    replace_partitions(conn, "etl_batch", recon, key="batch_date", keys=days, scope=scope)
    results = pl.read_parquet(settings.lake("dq_results") / kind / run_key)
    replace_partitions(conn, "dq_validation_result", results, key="run_date", keys=[run_date], scope=scope)
    return loaded
