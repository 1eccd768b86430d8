"""The model_quality rows: each CLV model fit with its diagnostics, and a calibration/holdout check.

Per as-of date and model (BG/NBD, Gamma-Gamma) there are two fits:

* `scoring`: the fit behind the customer scores (history up to the as-of date): parameters,
  log-likelihood and convergence diagnostics; nothing after it has happened yet, so no check;
* `calibration`: the same model refitted on the history up to `as_of - holdout_periods`, its
  forecasts compared with what the same customers did in the holdout periods that followed
  (lifetimes' calibration/holdout and tracking plots and a decile lift chart, as numbers).

On the BG/NBD calibration row the holdout measure is repeat purchases (purchase days, as the model
counts them); on the Gamma-Gamma row it is revenue, forecast per customer as E[purchases in the
holdout] (BG/NBD) × E[value of a purchase] (Gamma-Gamma): the undiscounted CLV over the holdout, so
its decile lift is the CLV decile lift. Rules: docs/metrics-clv.md ("Model quality").
"""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl

from pipeline.scoring.clv import (
    clv_decile_lift,
    expected_average_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    holdout_check,
)
from pipeline.scoring.config import ClvConfig
from pipeline.scoring.guards import FIT_SCHEMA, OK, _fit_row, _fitted, _guarded, insufficient, model_summary
from pipeline.scoring.rfm import purchase_days, units_to_money

SCORING, CALIBRATION = "scoring", "calibration"
# elapsed_seconds stays in the log: a re-run must reproduce the table exactly.
_FIT_COLUMNS = {k: v for k, v in FIT_SCHEMA.items() if k not in ("model", "elapsed_seconds")}
QUALITY_SCHEMA = {
    "as_of_date": pl.Date, "model": pl.String, "fit_role": pl.String, **_FIT_COLUMNS,
    "observation_end": pl.Date,  # last day of history the fit saw
    "holdout_periods": pl.Float64, "holdout_measure": pl.String, "holdout_customers": pl.Int64,
    "holdout_actual": pl.Float64, "holdout_predicted": pl.Float64, "holdout_predicted_unconditional": pl.Float64,
    "aggregate_relative_error": pl.Float64, "aggregate_relative_error_unconditional": pl.Float64,
    "mae_per_customer": pl.Float64, "top_decile_lift": pl.Float64, "decile_means": pl.String,
    "check_status": pl.String,
}


def model_quality(completed: pl.LazyFrame | pl.DataFrame, as_of: date, config: ClvConfig, fits: pl.DataFrame) -> pl.DataFrame:
    """The scoring fits (`fits` = guards.clv_scores(...).fits) plus the calibration fits with their checks.

    `completed` are the purchase lines of known customers by the as-of date (rfm.completed_lines_as_of).
    """
    holdout_days = max(1, round(config.holdout_periods * config.period_days))
    calibration_end = as_of - timedelta(days=holdout_days)
    scoring = [
        # A stored fit (guards.STORED) saw history up to its own fit date, not the as-of date.
        {**row, "fit_role": SCORING, "observation_end": row.get("observation_end") or as_of, "check_status": None}
        for row in fits.iter_rows(named=True)
    ]
    rows = scoring + _calibration_rows(completed.lazy(), calibration_end, as_of, holdout_days / config.period_days, config)
    return pl.DataFrame(
        [{**{c: row.get(c) for c in QUALITY_SCHEMA}, "as_of_date": as_of} for row in rows], schema=QUALITY_SCHEMA
    )


def _calibration_rows(completed: pl.LazyFrame, calibration_end: date, as_of: date, holdout: float,
                      config: ClvConfig) -> list[dict]:
    days = purchase_days(completed)  # known customers only
    summary = model_summary(days, calibration_end, config.period_days)
    after = (
        days.filter((pl.col("day") > calibration_end) & (pl.col("day") <= as_of))
        .group_by("customer_id")
        .agg(pl.len().cast(pl.Float64).alias("holdout_purchases"),
             units_to_money(pl.col("amount_units").sum()).alias("holdout_revenue"))
        .collect()
    )
    # Only customers known at the end of calibration are forecast; their holdout purchases are all repeats.
    joined = summary.join(after, on="customer_id", how="left", maintain_order="left").with_columns(
        pl.col("holdout_purchases", "holdout_revenue").fill_null(0.0)
    )
    x, t_x, T, m = (joined[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value"))
    m = np.maximum(m, 0.0)
    purchases, revenue = joined["holdout_purchases"].to_numpy(), joined["holdout_revenue"].to_numpy()

    bgnbd, bgnbd_state = _fitted(fit_bgnbd, x, t_x, T, penalizer=config.bgnbd_penalizer,
                                 min_customers=config.bgnbd_min_customers)
    gg, gg_state = _fitted(fit_gamma_gamma, np.where(m > 0, x, 0.0), m,
                           min_repeat_buyers=config.gamma_gamma_min_repeat_buyers)
    common = {"fit_role": CALIBRATION, "observation_end": calibration_end, "holdout_periods": holdout}
    bgnbd_row = {
        **_fit_row("bgnbd", bgnbd_state, bgnbd, bgnbd and {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b}),
        **common, "holdout_measure": "repeat_purchases",
    }
    gg_row = {
        **_fit_row("gamma_gamma", gg_state, gg, gg and {"p": gg.p, "q": gg.q, "v": gg.v}),
        **common, "holdout_measure": "revenue",
    }
    if bgnbd_state != OK:
        return [bgnbd_row | {"check_status": bgnbd_state},
                gg_row | {"check_status": f"{bgnbd_state} (BG/NBD calibration fit)"}]
    forecast, state = _guarded(expected_purchases, bgnbd, holdout, x, t_x, T)
    if forecast is None:
        return [bgnbd_row | {"check_status": state}, gg_row | {"check_status": f"{state} (BG/NBD calibration fit)"}]
    bgnbd_row |= _purchase_check(bgnbd, summary, x, forecast, purchases, holdout)
    gg_row |= {"check_status": gg_state} if gg_state != OK else _revenue_check(gg, x, m, forecast, revenue)
    return [bgnbd_row, gg_row]


def _purchase_check(fit, summary: pl.DataFrame, x, forecast, actual, holdout: float) -> dict:
    """Holdout repeat purchases against the BG/NBD forecasts, and the decile lift of the forecast."""
    check, check_state = _guarded(holdout_check, fit, summary, actual, holdout)
    result = {"holdout_customers": len(x), "holdout_actual": float(actual.sum()),
              "holdout_predicted": float(forecast.sum())}
    if check is not None:
        result |= {
            "holdout_predicted_unconditional": check["predicted_total_unconditional"],
            "aggregate_relative_error": check["aggregate_relative_error"],
            "aggregate_relative_error_unconditional": check["aggregate_relative_error_unconditional"],
            "mae_per_customer": check["mae_per_customer"],
        }
    return result | _lift(forecast, actual, check_state)


def _revenue_check(fit, x, m, forecast, actual) -> dict:
    """Holdout revenue against E[purchases] × E[value], over the customers with a finite expected value."""
    finite = fit.p * x + fit.q - 1 > 0
    if not finite.any():
        return {"holdout_customers": 0, "check_status": insufficient("no customer has a finite expected spend")}
    value, state = _guarded(expected_average_value, fit, x[finite], m[finite])
    if value is None:
        return {"check_status": state}
    predicted, actual = forecast[finite] * value, actual[finite]
    total = float(actual.sum())
    result = {
        "holdout_customers": int(finite.sum()), "holdout_actual": total, "holdout_predicted": float(predicted.sum()),
        "aggregate_relative_error": float(predicted.sum()) / total - 1 if total > 0 else None,
        "mae_per_customer": float(np.mean(np.abs(predicted - actual))),
    }
    state = OK if total > 0 else insufficient("no holdout revenue")
    return result | _lift(predicted, actual, state)


def _lift(predicted, actual, state: str) -> dict:
    """Top-decile lift and the decile means as JSON; the first problem met is the check's status."""
    lift, lift_state = _guarded(clv_decile_lift, predicted, actual)
    if lift is None:
        return {"check_status": state if state != OK else lift_state}
    deciles = {
        "predicted": [lift[f"decile_{k:02d}_predicted_mean"] for k in range(1, 11)],
        "actual": [lift[f"decile_{k:02d}_actual_mean"] for k in range(1, 11)],
    }
    return {"top_decile_lift": lift["top_decile_lift"], "decile_means": json.dumps(deciles), "check_status": state}
