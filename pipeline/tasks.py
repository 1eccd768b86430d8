"""The functions the crm_daily tasks call. Inputs and outputs are JSON-able paths and counts."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import sqlalchemy as sa

from pipeline.errors import fail_fast_on_bad_input
from pipeline.extract import extract, write_atomic
from pipeline.scoring.config import load_scoring_config
from pipeline.scoring.daily import daily_scores, staged_history, staged_inputs
from pipeline.settings import Settings, load_settings
from pipeline.sources import load_sources, load_sources_file
from pipeline.stage import (
    StageContext, batch_counts, check_quarantine_share, stage, write_partitions,
)
from pipeline.validate import RESULT_SCHEMA, ROW_ID
from pipeline.warehouse import ensure_schema, make_engine, sql_text
from pipeline.warehouse.load import load_run

log = logging.getLogger(__name__)


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
    """Loads the run into the warehouse in one transaction (pipeline/warehouse/load.py)."""
    settings = settings or load_settings()
    engine = make_engine(settings.warehouse_url)
    ensure_schema(engine)
    with engine.begin() as conn:
        loaded = load_run(conn, settings, run_date, staged, scored["path"])
    engine.dispose()
    log.info("loaded %s", loaded)
    return loaded


def report_day(run_date: date, settings: Settings | None = None) -> str:
    """The run report (pipeline/report): $CRM_HOME/reports/run_<date>.html from the loaded warehouse."""
    from pipeline.report import write_report

    settings = settings or load_settings()
    path = write_report(settings.warehouse_url, run_date, settings.lake("reports"),
                        config=load_scoring_config(settings.scoring_file))
    log.info("run report: %s", path)
    return str(path)
