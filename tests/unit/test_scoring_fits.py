"""Stored model fits (pipeline/scoring/fits.py): the refit's rows, and daily scoring that reuses them as of a date."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from pipeline.schemas import UTC_TS
from pipeline.scoring.clv import p_alive
from pipeline.scoring.config import ClvConfig, ScoringConfig
from pipeline.scoring.daily import daily_scores
from pipeline.scoring.fits import MODEL_FIT_SCHEMA, refit, usable_fits
from pipeline.scoring.guards import INLINE, OK, STORED, model_summary
from pipeline.scoring.rfm import completed_lines_as_of
from pipeline.scoring.kpi import ORDER_LINE_SCHEMA, as_input

FIT_DATE = date(2025, 12, 7)
LATER = date(2025, 12, 31)  # three weeks of new purchases after the fit
EARLIER = date(2025, 11, 30)
CONFIG = ScoringConfig()

ORDER = {"order_id": pl.String, "line_number": pl.Int32, "customer_id": pl.String, "ordered_at": UTC_TS,
         "category": pl.String, "quantity": pl.Int32, "line_amount": pl.Float64, "line_cost_amount": pl.Float64,
         "status": pl.String}


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    """A BG/NBD-like year: Poisson purchases, a dropout chance after each, gamma spend per customer."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(500):
        day, rate, drop, spend = int(rng.integers(0, 300)), rng.gamma(2.0, 1 / 30), rng.beta(1, 5), rng.gamma(4, 15)
        k = 0
        while day <= 364:
            k += 1
            at = datetime(2025, 1, 1, 12, tzinfo=timezone.utc) + timedelta(days=day)
            amount = round(rng.gamma(6, spend / 6), 2)
            rows.append((f"o{i}-{k}", 1, f"C{i:04d}", at, "books", 1, amount, amount * 0.6, "completed"))
            if rng.random() < drop:
                break
            day += 1 + int(rng.exponential(1 / rate))
    return pl.DataFrame(rows, schema=ORDER, orient="row")


def scores(orders: pl.DataFrame, as_of: date, fits: dict | None) -> dict[str, pl.DataFrame]:
    return daily_scores(orders, None, None, None, as_of=as_of, config=CONFIG, fits=fits)


def scoring_rows(quality: pl.DataFrame) -> pl.DataFrame:
    return quality.filter(pl.col("fit_role") == "scoring").sort("model")


def stored(fit_rows: pl.DataFrame) -> dict:
    """The fits as scoring reads them back from the warehouse (rows of queries/latest_model_fit)."""
    return usable_fits(fit_rows.to_dicts(), CONFIG.clv)


def test_refit_stores_both_models_with_diagnostics_and_quality(orders):
    fit_rows, quality = refit(orders.lazy(), FIT_DATE, CONFIG.clv)
    assert fit_rows.schema == pl.Schema(MODEL_FIT_SCHEMA)
    assert fit_rows["model"].to_list() == ["bgnbd", "gamma_gamma"]
    assert (fit_rows["status"] == OK).all() and fit_rows["converged"].all() and (fit_rows["fit_date"] == FIT_DATE).all()
    assert fit_rows["log_likelihood"].is_not_null().all() and (fit_rows["n_customers"] > 0).all()
    assert set(json.loads(fit_rows["parameters"][0])) == {"r", "alpha", "a", "b"}
    assert fit_rows["penalizer"].to_list() == [CONFIG.clv.bgnbd_penalizer, None]
    assert (fit_rows["period_days"] == CONFIG.clv.period_days).all()
    # model_quality: the fit as the scoring fit of its date, and the calibration fit with its holdout check.
    assert sorted(quality.select("model", "fit_role").rows()) == [
        ("bgnbd", "calibration"), ("bgnbd", "scoring"), ("gamma_gamma", "calibration"), ("gamma_gamma", "scoring")]
    assert (quality["as_of_date"] == FIT_DATE).all()
    score_rows = scoring_rows(quality)
    assert score_rows["parameters"].to_list() == fit_rows["parameters"].to_list()
    assert (score_rows["fit_source"] == STORED).all() and (score_rows["observation_end"] == FIT_DATE).all()
    calibration = quality.filter(pl.col("fit_role") == "calibration")
    assert (calibration["check_status"] == OK).all() and (calibration["observation_end"] < FIT_DATE).all()


def test_a_fit_reproduces_the_inline_fit_of_its_date(orders):
    """Stored or fitted inline, the fit date's scores and model_quality are the same: the daily run
    and the refit write the same rows for it, whichever comes last."""
    fit_rows, quality = refit(orders, FIT_DATE, CONFIG.clv)
    inline, reused = scores(orders, FIT_DATE, None), scores(orders, FIT_DATE, stored(fit_rows))
    assert reused["customer_score_daily"].equals(inline["customer_score_daily"])
    assert reused["model_quality"].equals(quality)
    assert scoring_rows(inline["model_quality"])["fit_source"].to_list() == [INLINE, INLINE]
    assert inline["model_quality"].drop("fit_source").equals(quality.drop("fit_source"))


def test_later_dates_score_with_the_stored_parameters(orders):
    fit_rows, _ = refit(orders, FIT_DATE, CONFIG.clv)
    fits = stored(fit_rows)
    reused, inline = scores(orders, LATER, fits), scores(orders, LATER, None)
    # P(alive) from the fit date's parameters, evaluated on the later date's purchase histories.
    summary = model_summary(completed_lines_as_of(as_input(orders, ORDER_LINE_SCHEMA), LATER), LATER,
                            CONFIG.clv.period_days)
    x, t_x, T = (summary[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    expected = pl.DataFrame({"customer_id": summary["customer_id"], "expected": p_alive(fits["bgnbd"].fit, x, t_x, T)})
    got = reused["customer_score_daily"].join(expected, on="customer_id", how="inner", validate="1:1")
    assert got.height == reused["customer_score_daily"].height == summary.height
    assert np.allclose(got["p_alive"].to_numpy(), got["expected"].to_numpy(), rtol=0, atol=1e-12)
    # ...which is not what a fit on the later history gives: the stored fit is really in use.
    both = reused["customer_score_daily"].join(inline["customer_score_daily"], on="customer_id", suffix="_inline")
    assert not np.allclose(both["p_alive"].to_numpy(), both["p_alive_inline"].to_numpy(), rtol=0, atol=1e-9)
    rows = scoring_rows(reused["model_quality"])
    assert rows["fit_source"].to_list() == [STORED, STORED] and (rows["observation_end"] == FIT_DATE).all()
    assert rows["parameters"].to_list() == fit_rows["parameters"].to_list()
    assert (rows["as_of_date"] == LATER).all()
    # The holdout check is still the later date's own.
    calibration = reused["model_quality"].filter(pl.col("fit_role") == "calibration")
    assert calibration.equals(inline["model_quality"].filter(pl.col("fit_role") == "calibration"))


def test_only_ok_fits_with_the_current_model_settings_are_reused(orders):
    fit_rows, _ = refit(orders, FIT_DATE, CONFIG.clv)
    assert set(stored(fit_rows)) == {"bgnbd", "gamma_gamma"}
    failed = fit_rows.with_columns(pl.when(pl.col("model") == "bgnbd").then(pl.lit("failed: did not converge"))
                                   .otherwise("status").alias("status"))
    assert set(stored(failed)) == {"gamma_gamma"}
    assert usable_fits(fit_rows.to_dicts(), ClvConfig(period_days=1.0)) == {}  # parameters in other time units
    assert set(usable_fits(fit_rows.to_dicts(), ClvConfig(bgnbd_penalizer=0.5))) == {"gamma_gamma"}
    # A failed stored BG/NBD fit: that model is fitted inline, the other still comes from the store.
    rows = scoring_rows(scores(orders, LATER, stored(failed))["model_quality"])
    assert rows.select("model", "fit_source", "observation_end").rows() == [
        ("bgnbd", INLINE, LATER), ("gamma_gamma", STORED, FIT_DATE)]


def test_without_stored_fits_scoring_fits_inline(orders):
    rows = scoring_rows(scores(orders, EARLIER, {})["model_quality"])
    assert rows["fit_source"].to_list() == [INLINE, INLINE] and (rows["observation_end"] == EARLIER).all()
    assert (rows["status"] == OK).all()
