"""Stored CLV model fits: crm_model_refit fits BG/NBD and Gamma-Gamma weekly; daily scoring reuses them.

    fit_rows, quality = refit(orders, fit_date, config)   # the model_fit and model_quality rows of the fit date
    fits = latest_fits(conn, as_of, config)               # {model: StoredFit} for guards.clv_scores(fitted=...)

As-of purity: a score for date D uses the latest fit whose fit date is on or before D, never a later
one, so re-running (backfilling) D with the same fits stored gives the same scores. A model whose
latest fit is not 'ok', or was made with other model settings (period length, penalizer), is fitted
inline instead, as it is when no fit is stored yet. model_quality says which: its scoring rows'
fit_source ('model_fit' or 'inline') and observation_end (the fit date of a stored fit).

The refit's model_quality rows for its fit date F are the ones a daily run for F writes when it
scores with that fit (same scoring fit, same calibration/holdout check, quality.model_quality), so
whichever of the two writes F last, the rows are the same.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

import polars as pl
import sqlalchemy as sa

from pipeline.scoring.clv import BGNBDFit, GammaGammaFit
from pipeline.scoring.config import ClvConfig
from pipeline.scoring.guards import OK, STORED, clv_scores
from pipeline.scoring.kpi import ORDER_LINE_SCHEMA, as_input
from pipeline.scoring.quality import model_quality
from pipeline.scoring.rfm import completed_lines_as_of
from pipeline.warehouse import sql_text, table_columns

MODELS = ("bgnbd", "gamma_gamma")
MODEL_FIT_SCHEMA = {
    "fit_date": pl.Date, "model": pl.String, "status": pl.String, "parameters": pl.String,
    "log_likelihood": pl.Float64, "converged": pl.Boolean, "iterations": pl.Int64, "message": pl.String,
    "n_customers": pl.Int64, "period_days": pl.Float64, "penalizer": pl.Float64,
}


@dataclass(frozen=True)
class StoredFit:
    """A model_fit row as the fit object guards.clv_scores evaluates, with the date it was fitted on."""

    model: str
    fit_date: date
    fit: BGNBDFit | GammaGammaFit


def refit(orders: pl.LazyFrame | pl.DataFrame | None, fit_date: date, config: ClvConfig) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(model_fit rows, model_quality rows) for the fit date, from the staged order lines up to it.

    The fits are the ones a daily run for the fit date makes inline (guards.clv_scores on the same
    lines), so a stored fit reproduces that day's scores exactly.
    """
    # Read once, only what the models look at: both the fits and the holdout check scan it.
    completed = (completed_lines_as_of(as_input(orders, ORDER_LINE_SCHEMA), fit_date)
                 .select("customer_id", "ordered_at", "line_amount").collect().lazy())
    fits = clv_scores(completed, fit_date, config).fits.with_columns(
        pl.lit(STORED).alias("fit_source"), pl.lit(fit_date).alias("observation_end"))
    return model_fit_rows(fits, fit_date, config), model_quality(completed, fit_date, config, fits)


def model_fit_rows(fits: pl.DataFrame, fit_date: date, config: ClvConfig) -> pl.DataFrame:
    """guards' fit rows (FIT_SCHEMA) as model_fit rows, with the settings the parameters depend on."""
    return fits.select(
        pl.lit(fit_date).alias("fit_date"), "model", "status", "parameters", "log_likelihood", "converged",
        "iterations", "message", "n_customers",
        pl.lit(float(config.period_days)).alias("period_days"),
        pl.when(pl.col("model") == "bgnbd").then(pl.lit(float(config.bgnbd_penalizer))).alias("penalizer"),
    ).cast(MODEL_FIT_SCHEMA)


def latest_fits(conn: sa.Connection, as_of: date, config: ClvConfig) -> dict[str, StoredFit]:
    """The usable fits of the latest fit date on or before `as_of`, by model; {} when none is
    stored, or the warehouse has no model_fit table yet."""
    if not table_columns(conn, "model_fit"):
        return {}
    rows = conn.execute(sa.text(sql_text("queries/latest_model_fit")), {"as_of": as_of}).mappings().all()
    return usable_fits([dict(r) for r in rows], config)


def usable_fits(rows: list[dict], config: ClvConfig) -> dict[str, StoredFit]:
    """model_fit rows as StoredFits, keeping only 'ok' fits made with the current model settings."""
    usable = {}
    for row in rows:
        penalizer = config.bgnbd_penalizer if row["model"] == "bgnbd" else None
        if (row["status"] != OK or row["model"] not in MODELS or row["period_days"] != float(config.period_days)
                or (penalizer is not None and row["penalizer"] != float(penalizer))):
            continue
        usable[row["model"]] = StoredFit(row["model"], row["fit_date"], _fit_object(row))
    return usable


def _fit_object(row: dict) -> BGNBDFit | GammaGammaFit:
    params = json.loads(row["parameters"])
    common = {"log_likelihood": row["log_likelihood"], "converged": bool(row["converged"]),
              "iterations": int(row["iterations"]), "n_customers": int(row["n_customers"]),
              "message": row["message"], "elapsed_seconds": 0.0}
    if row["model"] == "bgnbd":
        return BGNBDFit(r=params["r"], alpha=params["alpha"], a=params["a"], b=params["b"], n_unique_rows=0,
                        starts_tried=0, **common)
    return GammaGammaFit(p=params["p"], q=params["q"], v=params["v"], **common)

