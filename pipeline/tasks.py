"""The functions the crm_daily tasks call. Inputs and outputs are JSON-able paths and counts."""
from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from pipeline.errors import fail_fast_on_bad_input
from pipeline.extract import extract, write_atomic
from pipeline.report.data import query
from pipeline.scoring.config import ScoringConfig, load_scoring_config
from pipeline.scoring.daily import daily_scores, staged_history, staged_inputs, staged_rows, staged_scans
from pipeline.scoring.shards import (
    Plan,
    merge_scores,
    plan_frames,
    plan_of,
    plan_scores,
    scores_in_shards,
    shard_inputs,
    shard_scores,
)
from pipeline.settings import Settings, load_settings
from pipeline.sources import load_sources, load_sources_file
from pipeline.stage import StageContext, stage_landed
from pipeline.warehouse import connected, sql_text
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
    with connected(settings.warehouse_url) as conn:
        watermark = conn.execute(sa.text(sql_text("queries/watermark")), {"source": kind}).scalar()
        owned = set(conn.execute(sa.text(sql_text("queries/batches_of_run")), {"source": kind, "run_date": run_date}).scalars())
    return extract(source, watermark, run_date, settings.lake("landing"), owned)


@fail_fast_on_bad_input
def stage_source(kind: str, extracted: dict, run_date: date, settings: Settings | None = None) -> dict:
    """Standardize and validate the landed rows, in chunks of batch days (pipeline/stage.py); write
    accepted, quarantined and audit lakes."""
    settings = settings or load_settings()
    result = {"kind": kind, "raw": 0, "accepted": 0, "quarantined": 0, "batch_dates": []}
    if not extracted["batches"]:
        return result
    config = load_sources_file(settings.sources_file)
    known, registry = _customer_reference(settings, config.sources, kind, run_date)
    ctx = StageContext(
        source=config.sources[kind],
        interval_end=interval_end(run_date) + config.sources[kind].max_clock_skew,  # the latest event accepted
        fx_rates=fx_rates(settings.fx_rates_file, config.base_currency or settings.base_currency),
        known_customers=known,
        registry=registry,
        pii_salt=settings.pii_salt,
    )
    run_id = f"{kind}-{run_date.isoformat()}"
    lakes = {"accepted": settings.lake("staging") / kind, "quarantine": settings.lake("quarantine") / kind,
             "answers": settings.lake("staging") / "survey_answers"}
    outcome = stage_landed(kind, extracted, ctx, lakes, gx_root=settings.lake("gx"), run_name=run_id)
    audit = {"reconciliation": outcome.reconciliation.with_columns(pl.lit(run_date).alias("run_date")),
             "dq_results": outcome.results.with_columns(pl.lit(run_date).alias("run_date"), pl.lit(run_id).alias("run_id"),
                                                        pl.lit(kind).alias("source"))}
    for name, frame in audit.items():
        write_atomic(frame, settings.lake(name) / kind / f"run_date={run_date.isoformat()}" / "part.parquet")
    counts = {"raw": outcome.raw, "accepted": outcome.accepted, "quarantined": outcome.quarantined}
    log.info("source %s: %d raw = %d accepted + %d quarantined", kind, counts["raw"], counts["accepted"], counts["quarantined"])
    return result | counts | {"batch_dates": [b["batch_date"] for b in extracted["batches"]]}


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
    scores lake; no score from nothing (pipeline/scoring/daily.py). Returns the path and row counts.
    A history of more than settings.score_shard_lines order lines is scored one customer shard at
    a time (shards.scores_in_shards), with the same rows."""
    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    staging = settings.lake("staging")
    shards = -(-staged_rows(staging, "orders", run_date) // settings.score_shard_lines) or 1
    fits, history = stored_fits(run_date, config.clv, settings), kpi_history(settings, run_date, config)
    if shards > 1:
        log.info("scoring %s in %d customer shards", run_date, shards)
        tables = scores_in_shards(staged_scans(staging, run_date), count=shards, as_of=run_date, config=config,
                                  fits=fits, kpi_history=history)
    else:
        # The order lines stay a scan until daily_scores reads them, after Cronbach's alpha has read
        # the survey answers: the two largest inputs are never in memory together.
        inputs = staged_inputs(staging, run_date, lazy=("orders", "survey_items"))
        tables = daily_scores(**inputs, as_of=run_date, config=config, kpi_history=history, fits=fits)
    return _written_scores(tables, run_date, settings)


def _written_scores(tables: dict[str, pl.DataFrame], run_date: date, settings: Settings) -> dict:
    out = settings.lake("scores") / f"as_of_date={run_date.isoformat()}"
    for table, frame in tables.items():
        write_atomic(frame, out / f"{table}.parquet")
    rows = {table: frame.height for table, frame in tables.items()}
    if not rows["customer_score_daily"]:
        log.warning("no customer with a completed order up to %s: no customer scores", run_date)
    return {"as_of_date": run_date.isoformat(), "customers": rows["customer_score_daily"], "path": str(out), "rows": rows}


def score_plan(run_date: date, shards: int, settings: Settings | None = None) -> dict:
    """Sharded scoring, step 1 of 3 (pipeline/scoring/shards.py): the history-wide scores and the cut
    points every shard needs, stored under $CRM_HOME/score_shards/as_of_date=<date>/plan."""
    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    plan = plan_scores(**staged_scans(settings.lake("staging"), run_date), as_of=run_date, config=config, count=shards,
                       fits=stored_fits(run_date, config.clv, settings))
    out = _shard_dir(settings, run_date) / "plan"
    for name, frame in plan_frames(plan).items():
        write_atomic(frame, out / f"{name}.parquet")
    log.info("score plan for %s: %d shards, %d customers with CLV scores", run_date, shards,
             plan.history.clv.customers.height)
    return {"as_of_date": run_date.isoformat(), "path": str(out), "count": shards}


def score_shard(run_date: date, plan: dict, index: int, settings: Settings | None = None) -> dict:
    """Sharded scoring, step 2: one shard's customer_score_daily rows, next to the plan."""
    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    scans = staged_scans(settings.lake("staging"), run_date, ("orders", "surveys", "complaints"))
    inputs = shard_inputs(scans, index, plan["count"])
    rows = shard_scores(**inputs, plan=_read_plan(plan), index=index, as_of=run_date, config=config)
    path = _shard_dir(settings, run_date) / f"shard={index}-of-{plan['count']}" / "customer_score_daily.parquet"
    write_atomic(rows, path)
    log.info("score shard %d of %d for %s: %d customers", index + 1, plan["count"], run_date, rows.height)
    return {"index": index, "path": str(path), "customers": rows.height}


def score_merge(run_date: date, plan: dict, shards: list[dict], settings: Settings | None = None) -> dict:
    """Sharded scoring, step 3: the shards' rows and the plan as the score tables score_day writes."""
    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    parts = [pl.read_parquet(part["path"]) for part in sorted(shards, key=lambda part: part["index"])]
    tables = merge_scores(_read_plan(plan), parts, as_of=run_date, config=config,
                          kpi_history=kpi_history(settings, run_date, config))
    return _written_scores(tables, run_date, settings)


def _shard_dir(settings: Settings, run_date: date) -> Path:
    return settings.lake("score_shards") / f"as_of_date={run_date.isoformat()}"


def _read_plan(plan: dict) -> Plan:
    return plan_of({path.stem: pl.read_parquet(path) for path in Path(plan["path"]).glob("*.parquet")})


def kpi_history(settings: Settings, run_date: date, config: ScoringConfig) -> pl.DataFrame | None:
    """The committed kpi_daily rows of the longest dynamic-threshold window before the run date.

    From the warehouse rather than the scores lake: it holds exactly the loads that committed (a
    backfilled date's row replaced in its load), and survives a new machine or a lost lake.
    """
    windows = [t.window_days for t in config.kpi_thresholds if t.kind == "dynamic"]
    if not windows:
        return None
    with connected(settings.warehouse_url) as conn:
        history = query(conn, "kpi_history", first=run_date - timedelta(days=max(windows)), as_of=run_date)
    return history if history.height else None


def load_day(run_date: date, staged: list[dict], scored: dict, settings: Settings | None = None) -> dict:
    """Loads the run into the warehouse in one transaction (pipeline/warehouse/load.py)."""
    settings = settings or load_settings()
    with connected(settings.warehouse_url, transaction=True) as conn:
        loaded = load_run(conn, settings, run_date, staged, scored["path"])
    log.info("loaded %s", loaded)
    return loaded


def notify_day(run_date: date, settings: Settings | None = None) -> dict:
    """Sends the run date's committed KPI alerts (kpi_alert) through pipeline.notify, one message per
    date. Runs after the load, so an alert of a rolled-back load is never sent. A channel that fails
    fails the task, which retries; a misconfigured channel fails it at once."""
    from pipeline.notify import NotifyConfigError, notify

    settings = settings or load_settings()
    with connected(settings.warehouse_url) as conn:
        alerts = query(conn, "kpi_alerts_of_date", as_of=run_date)
    if not alerts.height:
        log.info("no KPI alert as of %s: nothing to notify", run_date)
        return {"as_of_date": run_date.isoformat(), "alerts": 0}
    subject, body, payload = alert_message(run_date, alerts)
    try:
        notify(subject, body, payload)
    except NotifyConfigError as exc:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
    return {"as_of_date": run_date.isoformat(), "alerts": alerts.height}


def alert_message(run_date: date, alerts: pl.DataFrame) -> tuple[str, str, dict]:
    """(subject, body, payload) of one date's KPI alerts."""
    critical = alerts.filter(pl.col("severity") == "critical").height
    subject = (f"[crm] KPI alerts as of {run_date}: {alerts.height}"
               + (f", {critical} critical" if critical else ""))
    body = "\n".join(f"- [{a['severity']}] {a['message']}" for a in alerts.iter_rows(named=True))
    payload = {"kind": "kpi_alerts", "as_of_date": run_date.isoformat(), "alerts": alerts.to_dicts()}
    return subject, body, payload


def report_day(run_date: date, settings: Settings | None = None) -> str:
    """The run report (pipeline/report): $CRM_HOME/reports/run_<date>.html from the loaded warehouse."""
    from pipeline.report import write_report

    settings = settings or load_settings()
    path = write_report(settings.warehouse_url, run_date, settings.lake("reports"),
                        config=load_scoring_config(settings.scoring_file))
    log.info("run report: %s", path)
    return str(path)


def stored_fits(run_date: date, config, settings: Settings | None = None) -> dict:
    """The stored model fits scoring for the run date uses (pipeline/scoring/fits.py); {} = fit inline."""
    from pipeline.scoring.fits import latest_fits

    settings = settings or load_settings()
    with connected(settings.warehouse_url, upgrade=False) as conn:
        fits = latest_fits(conn, run_date, config)
    log.info("stored fits for %s: %s", run_date, {m: f.fit_date.isoformat() for m, f in fits.items()} or "none, fitting inline")
    return fits


def scores_loaded(as_of: date, settings: Settings | None = None) -> bool:
    """Whether a crm_daily run for the date has loaded (crm_model_refit waits for it)."""
    settings = settings or load_settings()
    with connected(settings.warehouse_url) as conn:
        loaded = _run_loaded(conn, as_of)
    log.info("crm_daily for %s %s", as_of, "has loaded" if loaded else "has not loaded yet")
    return loaded


def _run_loaded(conn: sa.Connection, as_of: date) -> bool:
    return bool(conn.execute(sa.text(sql_text("queries/scores_loaded")), {"as_of": as_of}).scalar())


def refit_models(fit_date: date, settings: Settings | None = None) -> dict:
    """crm_model_refit: BG/NBD and Gamma-Gamma refitted on the staged history up to the fit date and
    stored with their model_quality rows, replacing that fit date's rows in one transaction."""
    from pipeline.scoring.fits import refit
    from pipeline.warehouse.loader import replace_partitions

    settings = settings or load_settings()
    config = load_scoring_config(settings.scoring_file)
    fit_rows, quality = refit(staged_history(settings.lake("staging"), "orders", fit_date), fit_date, config.clv)
    with connected(settings.warehouse_url, transaction=True) as conn:
        rows = {"model_fit": replace_partitions(conn, "model_fit", fit_rows, key="fit_date", keys=[fit_date]),
                "model_quality": replace_partitions(conn, "model_quality", quality, key="as_of_date", keys=[fit_date])}
    status = dict(fit_rows.select("model", "status").iter_rows())
    log.info("model fits as of %s: %s; stored %s", fit_date, status, rows)
    return {"fit_date": fit_date.isoformat(), "status": status, "rows": rows}


def export_segments(as_of: date, settings: Settings | None = None) -> dict:
    """crm_export: the date's segment export under $CRM_HOME/exports/<date>/ (pipeline/export.py)."""
    from pipeline.export import segment_rows, write_export

    settings = settings or load_settings()
    with connected(settings.warehouse_url) as conn:
        if not _run_loaded(conn, as_of):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"no crm_daily run has loaded {as_of}: nothing to export")
        frame = segment_rows(conn, as_of)
    out = settings.lake("exports") / as_of.isoformat()
    manifest = write_export(frame, as_of, out)
    log.info("segment export for %s: %d customers in %s", as_of, manifest["rows"], out)
    return {"as_of_date": as_of.isoformat(), "path": str(out), "rows": manifest["rows"]}


# Tables the load rebuilds from all history or keys by run date, whose rows load_day does not report.
_COUNTED = {"etl_batch": "run_date", "dq_validation_result": "run_date", "etl_run": "run_date",
            "fct_order_line": None, "fct_order": None,
            "fct_survey_response": None, "fct_survey_answer": None, "fct_complaint": None, "dim_customer": None}


def load_asset_extras(run_date: date, loaded: dict, settings: Settings | None = None) -> dict[str, dict]:
    """The extra of each crm_daily asset event (pipeline/assets.py): the run date and the table's rows."""
    from pipeline.assets import DAILY_TABLES, RUN_DATE, TABLE, WRITTEN, extra
    from pipeline.warehouse import table_ref

    written: dict[str, int] = {}
    for name, rows in loaded.items():  # quarantine is reported per source: quarantine[orders]
        table = name.split("[", 1)[0]
        written[table] = written.get(table, 0) + rows
    settings = settings or load_settings()
    extras = {}
    with connected(settings.warehouse_url, upgrade=False) as conn:
        for table in DAILY_TABLES:
            if table not in _COUNTED:
                extras[table] = extra(run_date, written.get(table, 0), WRITTEN)
                continue
            column = _COUNTED[table]
            query = sa.select(sa.func.count()).select_from(table_ref(table))
            if column:
                query = query.where(sa.column(column) == run_date)
            extras[table] = extra(run_date, conn.execute(query).scalar(), RUN_DATE if column else TABLE)
    return extras
