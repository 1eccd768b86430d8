"""Minimum-data guards and the guarded CLV scores.

A score that lacks the data it needs is null, and a status column next to it says why:
'ok' or 'insufficient_data: <reason>'. Model fits that fail for another reason say 'failed: <reason>'.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from pipeline.scoring.clv import (
    InsufficientDataError,
    discounted_clv,
    expected_average_value,
    expected_purchases,
    fit_bgnbd,
    fit_gamma_gamma,
    p_alive,
    rfm_summary,
)
from pipeline.scoring.config import ClvConfig
from pipeline.scoring.rfm import MONEY_UNITS, purchase_days

OK = "ok"


def insufficient(reason: str) -> str:
    return f"insufficient_data: {reason}"


def status(has_data: pl.Expr, reason: str) -> pl.Expr:
    """'ok' where the data is there, otherwise the insufficient-data reason."""
    return pl.when(has_data).then(pl.lit(OK)).otherwise(pl.lit(insufficient(reason)))


def end_of(as_of: date) -> pl.Expr:
    """Midnight UTC after the as-of date: the first instant a score for that date may not see."""
    return pl.datetime(as_of.year, as_of.month, as_of.day, time_zone="UTC") + pl.duration(days=1)


def observed_by(column: str, as_of: date) -> pl.Expr:
    """The event happened on or before the as-of date (UTC): scores never look past the day they are for."""
    return pl.col(column) < end_of(as_of)


def weighted_mean(terms: Sequence[tuple[pl.Expr, float]]) -> pl.Expr:
    """Σ w x / Σ w over the terms whose x is not null; null when none is: missing parts drop out
    and the others' weights are renormalised."""
    total = pl.sum_horizontal(value * weight for value, weight in terms)
    weights = pl.sum_horizontal(pl.when(value.is_not_null()).then(pl.lit(weight)).otherwise(0.0) for value, weight in terms)
    return pl.when(weights > 0).then(total / weights)


@dataclass(frozen=True)
class ClvScores:
    """Per-customer CLV scores and one diagnostics row per model fit (for the model_quality table)."""

    customers: pl.DataFrame
    fits: pl.DataFrame


CLV_SCHEMA = {
    "customer_id": pl.String, "p_alive": pl.Float64, "expected_purchases": pl.Float64,
    "expected_average_value": pl.Float64, "clv_amount": pl.Float64, "bgnbd_status": pl.String,
    "expected_purchases_status": pl.String, "expected_value_status": pl.String, "clv_status": pl.String,
}
FIT_SCHEMA = {
    "model": pl.String, "status": pl.String, "parameters": pl.String, "log_likelihood": pl.Float64,
    "converged": pl.Boolean, "iterations": pl.Int64, "message": pl.String, "n_customers": pl.Int64,
    "elapsed_seconds": pl.Float64,
    # Where the fit comes from: INLINE (fitted now) or STORED (crm_model_refit's, pipeline/scoring/fits.py),
    # and the last day of history it saw.
    "fit_source": pl.String, "observation_end": pl.Date,
}
INLINE, STORED = "inline", "model_fit"


def _fit_row(model: str, state: str, fit, params: dict[str, float] | None, source: str = INLINE,
             observation_end: date | None = None) -> dict:
    return {
        "model": model, "status": state, "parameters": json.dumps(params) if params else None,
        "log_likelihood": getattr(fit, "log_likelihood", None), "converged": getattr(fit, "converged", None),
        "iterations": getattr(fit, "iterations", None), "message": getattr(fit, "message", None),
        "n_customers": getattr(fit, "n_customers", None),
        "elapsed_seconds": getattr(fit, "elapsed_seconds", None),
        "fit_source": source, "observation_end": observation_end,
    }


def _guarded(function, *args, **kwargs):
    """(result, 'ok') or (None, reason): a model that cannot be fitted or evaluated must not stop the other scores."""
    try:
        with np.errstate(all="ignore"):  # failures surface as exceptions; their warnings are noise
            return function(*args, **kwargs), OK
    except InsufficientDataError as error:
        return None, insufficient(error.reason)
    except (ValueError, FloatingPointError) as error:
        return None, f"failed: {error}"


def _fitted(fit_function, *args, **kwargs):
    """(fit, state): a fit that did not converge is kept for its diagnostics but is not 'ok'."""
    fit, state = _guarded(fit_function, *args, **kwargs)
    if fit is not None and not fit.converged:
        state = f"failed: {fit_function.__name__} did not converge ({fit.message})"
    return fit, state


def _stored_or_fitted(stored, fit_function, *args, **kwargs):
    """(fit, state, source, observation_end): the stored fit when there is one (fits.py hands over
    only fits that were 'ok'), else a fit made now on the data."""
    if stored is not None:
        return stored.fit, OK, STORED, stored.fit_date
    return (*_fitted(fit_function, *args, **kwargs), INLINE, None)


def _evaluated(state: str, n: int, function, *args) -> tuple[np.ndarray, str]:
    """function(*args) when the fit is 'ok'; else, or when it fails, n NaNs and the reason."""
    values = None
    if state == OK:
        values, state = _guarded(function, *args)
    return (values, state) if state == OK else (np.full(n, np.nan), state)


NO_FINITE_SPEND = insufficient("too few repeat purchases for a finite expected spend (Gamma-Gamma p x + q <= 1)")


def _spend_scores(fit, state: str, x, m) -> tuple[np.ndarray, np.ndarray]:
    """Expected value of a future purchase and a status per customer.

    With q <= 1 the fitted spend distribution has no finite mean, so customers with few repeat
    purchases (p x + q <= 1) get none; the others are still scored.
    """
    value, status = np.full(len(x), np.nan), np.full(len(x), state, dtype=object)
    if state == OK:
        finite = fit.p * x + fit.q - 1 > 0
        value[finite] = expected_average_value(fit, x[finite], m[finite])
        status[~finite] = NO_FINITE_SPEND
    return value, status


def model_summary(completed: pl.LazyFrame | pl.DataFrame, observation_end: date, period_days: float) -> pl.DataFrame:
    """clv.rfm_summary of the known customers' purchase lines (or their rfm.purchase_days), amounts
    added exactly.

    Amounts go in as whole millionths (integer-valued floats add exactly in any order), so the
    day totals do not depend on the order a parallel group-by adds them in, and re-runs fit the
    same bytes.
    """
    summary = rfm_summary(
        purchase_days(completed), customer_col="customer_id", at_col="day", amount_col="amount_units",
        observation_end=observation_end, period_days=period_days, one_row_per_day=True,
    )
    return summary.with_columns(pl.col("monetary_value") / MONEY_UNITS)


def clv_scores(completed: pl.LazyFrame, as_of: date, config: ClvConfig, fitted: Mapping | None = None) -> ClvScores:
    """P(alive), expected purchases and value, discounted CLV per customer, each with its own status.

    `fitted` maps a model ('bgnbd', 'gamma_gamma') to a stored fit to use instead of fitting it on
    this history (fits.latest_fits: crm_model_refit's latest fit on or before the as-of date).

    `completed` are purchase lines as of the date (rfm.completed_lines_as_of); guests are left out.
    `bgnbd_status` covers P(alive), `expected_purchases_status` the BG/NBD forecast,
    `expected_value_status` the Gamma-Gamma spend (per customer), and `clv_status` whichever of the
    last two stops the CLV. The fit rows' `status` is the outcome of the fit itself.
    """
    summary = model_summary(completed, as_of, config.period_days)
    x, t_x, T, m = (summary[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value"))
    m = np.maximum(m, 0.0)
    # Gamma-Gamma is fitted on positive spend only; a repeat buyer whose repeats were free is still
    # scored with its own (zero) mean, which shrinks its expected value towards zero.
    fitted = fitted or {}
    bgnbd, bgnbd_fit_state, bgnbd_source, bgnbd_end = _stored_or_fitted(
        fitted.get("bgnbd"), fit_bgnbd, x, t_x, T, penalizer=config.bgnbd_penalizer,
        min_customers=config.bgnbd_min_customers
    )
    gg, gg_fit_state, gg_source, gg_end = _stored_or_fitted(
        fitted.get("gamma_gamma"), fit_gamma_gamma, np.where(m > 0, x, 0.0), m,
        min_repeat_buyers=config.gamma_gamma_min_repeat_buyers
    )
    n = len(x)
    alive, bgnbd_state = _evaluated(bgnbd_fit_state, n, p_alive, bgnbd, x, t_x, T)
    purchases, purchases_state = _evaluated(bgnbd_fit_state, n, expected_purchases, bgnbd, config.horizon_periods, x, t_x, T)
    value, spend_status = _spend_scores(gg, gg_fit_state, x, m)
    clv_status = spend_status.copy() if purchases_state == OK else np.full(n, purchases_state, dtype=object)
    clv = np.full(n, np.nan)
    rows = clv_status == OK
    if rows.any():
        amounts, state = _guarded(
            discounted_clv, bgnbd, gg, x[rows], t_x[rows], T[rows], m[rows], horizon_periods=config.horizon_periods,
            discount_rate_per_period=config.discount_rate_per_period, margin=config.margin, step=config.step_periods,
        )
        if amounts is None:
            clv_status[rows] = state
        else:
            clv[rows] = amounts
    customers = pl.DataFrame(
        {
            "customer_id": summary["customer_id"], "p_alive": alive, "expected_purchases": purchases,
            "expected_average_value": value, "clv_amount": clv,
            "bgnbd_status": [bgnbd_state] * n, "expected_purchases_status": [purchases_state] * n,
            "expected_value_status": spend_status.tolist(), "clv_status": clv_status.tolist(),
        },
        schema=CLV_SCHEMA | {"customer_id": summary["customer_id"].dtype},  # ids, or daily_scores' integer codes
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
    fits = pl.DataFrame(
        [
            _fit_row("bgnbd", bgnbd_fit_state, bgnbd,
                     bgnbd and {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b},
                     bgnbd_source, bgnbd_end or as_of),
            _fit_row("gamma_gamma", gg_fit_state, gg, gg and {"p": gg.p, "q": gg.q, "v": gg.v}, gg_source, gg_end or as_of),
        ],
        schema=FIT_SCHEMA,
    )
    return ClvScores(customers, fits)
