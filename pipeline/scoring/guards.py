"""Minimum-data guards and the guarded CLV scores.

A score that lacks the data it needs is null, and a status column next to it says why:
'ok' or 'insufficient_data: <reason>'. Model fits that fail for another reason say 'failed: <reason>'.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
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
    "expected_average_value": pl.Float64, "clv_amount": pl.Float64, "bgnbd_status": pl.String, "clv_status": pl.String,
}
FIT_SCHEMA = {
    "model": pl.String, "status": pl.String, "parameters": pl.String, "log_likelihood": pl.Float64,
    "converged": pl.Boolean, "iterations": pl.Int64, "n_customers": pl.Int64, "elapsed_seconds": pl.Float64,
}


def _fit_row(model: str, state: str, fit, params: dict[str, float] | None) -> dict:
    return {
        "model": model, "status": state, "parameters": json.dumps(params) if params else None,
        "log_likelihood": getattr(fit, "log_likelihood", None), "converged": getattr(fit, "converged", None),
        "iterations": getattr(fit, "iterations", None), "n_customers": getattr(fit, "n_customers", None),
        "elapsed_seconds": getattr(fit, "elapsed_seconds", None),
    }


def _guarded(function, *args, **kwargs):
    """(result, 'ok') or (None, reason): a model that cannot be fitted or evaluated must not stop the other scores."""
    try:
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


def clv_scores(completed: pl.LazyFrame, as_of: date, config: ClvConfig) -> ClvScores:
    """P(alive), expected purchases and value, discounted CLV per customer, each guarded.

    `completed` are purchase lines as of the date (rfm.completed_lines_as_of); guests are left out.
    BG/NBD gives P(alive) and expected purchases (`bgnbd_status`); CLV also needs Gamma-Gamma
    (`clv_status` carries whichever reason stops it).
    """
    summary = rfm_summary(
        completed.filter(pl.col("customer_id").is_not_null()), customer_col="customer_id", at_col="ordered_at",
        amount_col="line_amount", observation_end=as_of, period_days=config.period_days,
    )
    x, t_x, T, m = (summary[c].to_numpy().astype(float) for c in ("frequency", "recency", "T", "monetary_value"))
    m = np.maximum(m, 0.0)
    # Gamma-Gamma is fitted on positive spend only; a repeat buyer whose repeats were free is still
    # scored with its own (zero) mean, which shrinks its expected value towards zero.
    bgnbd, bgnbd_state = _fitted(
        fit_bgnbd, x, t_x, T, penalizer=config.bgnbd_penalizer, min_customers=config.bgnbd_min_customers
    )
    gg, gg_state = _fitted(
        fit_gamma_gamma, np.where(m > 0, x, 0.0), m, min_repeat_buyers=config.gamma_gamma_min_repeat_buyers
    )
    alive = purchases = value = clv = None
    if bgnbd_state == OK:
        alive, bgnbd_state = _guarded(p_alive, bgnbd, x, t_x, T)
    if bgnbd_state == OK:
        purchases, bgnbd_state = _guarded(expected_purchases, bgnbd, config.horizon_periods, x, t_x, T)
    value_state = gg_state
    if gg_state == OK:
        value, value_state = _guarded(expected_average_value, gg, x, m)  # fails when q <= 1: no finite mean
    clv_state = bgnbd_state if bgnbd_state != OK else value_state
    if clv_state == OK:
        clv, clv_state = _guarded(
            discounted_clv, bgnbd, gg, x, t_x, T, m, horizon_periods=config.horizon_periods,
            discount_rate_per_period=config.discount_rate_per_period, margin=config.margin, step=config.step_periods,
        )
    if bgnbd_state != OK:  # P(alive) alone may have worked before expected purchases failed
        alive = purchases = None
    alive, purchases, value, clv = (np.full(len(x), np.nan) if v is None else v for v in (alive, purchases, value, clv))
    customers = pl.DataFrame(
        {
            "customer_id": summary["customer_id"], "p_alive": alive, "expected_purchases": purchases,
            "expected_average_value": value, "clv_amount": clv,
            "bgnbd_status": [bgnbd_state] * len(x), "clv_status": [clv_state] * len(x),
        },
        schema=CLV_SCHEMA,
    ).with_columns(pl.col(pl.Float64).fill_nan(None))
    fits = pl.DataFrame(
        [
            _fit_row("bgnbd", bgnbd_state, bgnbd, bgnbd and {"r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b}),
            _fit_row("gamma_gamma", gg_state, gg, gg and {"p": gg.p, "q": gg.q, "v": gg.v}),
        ],
        schema=FIT_SCHEMA,
    )
    return ClvScores(customers, fits)
