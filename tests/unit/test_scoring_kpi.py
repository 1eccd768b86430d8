"""Entry points (customer_scores, company_kpis), KPI alerts, the guarded CLV scores and the scoring config."""
import dataclasses
import json
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.scoring.config import (
    ClvConfig,
    KpiThreshold,
    LifecycleConfig,
    ScoringConfig,
    load_scoring_config,
    scoring_config_from_dict,
)
from pipeline.scoring.complaints import COMPLAINT_SCHEMA
from pipeline.scoring.clv import GammaGammaFit
from pipeline.scoring.guards import NO_FINITE_SPEND, _spend_scores, clv_scores
from pipeline.scoring.alerts import kpi_alerts
from pipeline.scoring.kpi import CUSTOMER_COLUMNS, ORDER_LINE_SCHEMA, company_kpis, customer_scores
from pipeline.scoring.rfm import completed_lines_as_of
from pipeline.scoring.service import RESPONSE_SCHEMA

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
AS_OF = date(2025, 12, 31)


def at(*parts) -> datetime:
    return datetime(*parts, 12, tzinfo=timezone.utc)


def order_lines(rows: list[tuple]) -> pl.DataFrame:
    """(customer_id, order_id, ordered_at, category, line_amount, line_cost_amount, status) -> order lines."""
    return pl.DataFrame(
        [{"customer_id": c, "order_id": o, "line_number": 1, "ordered_at": t, "category": cat, "quantity": 1,
          "line_amount": amount, "line_cost_amount": cost, "status": status, "unit_price_amount": amount}
         for c, o, t, cat, amount, cost, status in rows],
        schema=ORDER_LINE_SCHEMA,
    )


# --------------------------------------------------------------------------
# KPI alerts
# --------------------------------------------------------------------------

KPIS = pl.DataFrame({"as_of_date": [AS_OF], "retention_rate": [0.1], "nps": [-5.0], "csat": [None],
                     "sla_breach_share": [0.2], "complaints_per_1000_orders": [5.0]},
                    schema_overrides={"csat": pl.Float64})


def test_alerts_for_breached_thresholds_only():
    thresholds = [
        KpiThreshold("retention_rate", min=0.2, severity="warning"),
        KpiThreshold("nps", min=0.0, max=100.0, severity="info"),
        KpiThreshold("csat", min=0.7),  # null: no alert
        KpiThreshold("sla_breach_share", max=0.1, severity="critical"),
        KpiThreshold("complaints_per_1000_orders", min=1.0, max=20.0),  # inside the band
    ]
    alerts = kpi_alerts(KPIS, thresholds)
    assert alerts.select("metric", "value", "threshold", "bound", "severity").rows() == [
        ("retention_rate", 0.1, 0.2, "min", "warning"),
        ("nps", -5.0, 0.0, "min", "info"),
        ("sla_breach_share", 0.2, 0.1, "max", "critical"),
    ]
    assert alerts["message"][2] == "sla_breach_share = 0.2 is above the maximum 0.1"
    assert alerts["as_of_date"].to_list() == [AS_OF] * 3


def test_alert_configuration_errors_fail_loudly():
    with pytest.raises(KeyError, match="no_such_metric"):
        kpi_alerts(KPIS, [KpiThreshold("no_such_metric", min=1.0)])
    with pytest.raises(ValueError, match="one row"):
        kpi_alerts(pl.concat([KPIS, KPIS]), [])
    with pytest.raises(ValueError, match="min or max"):
        KpiThreshold("nps")
    with pytest.raises(ValueError, match="severity"):
        KpiThreshold("nps", min=0.0, severity="urgent")


# --------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------


def test_config_file_holds_the_defaults():
    assert load_scoring_config(ROOT / "config" / "scoring.yml") == ScoringConfig()


def test_config_overrides_and_validation():
    config = scoring_config_from_dict({"lifecycle": {"lost_days": 400}, "complaints": {"sla_hours": {"high": 10}},
                                       "kpi_thresholds": [{"metric": "nps", "min": 10}]})
    assert config.lifecycle.lost_days == 400 and config.lifecycle.new_days == LifecycleConfig().new_days
    assert dict(config.complaints.sla_hours) == {"high": 10.0}
    assert config.kpi_thresholds == (KpiThreshold("nps", min=10),)
    with pytest.raises(ValueError, match="unknown keys in lifecycle"):
        scoring_config_from_dict({"lifecycle": {"lost_day": 400}})
    with pytest.raises(ValueError, match="rater_weights"):
        scoring_config_from_dict({"service": {"rater_weights": {"reliability": 1.0}}})
    with pytest.raises(ValueError, match="multiple of step_periods"):
        ClvConfig(horizon_periods=10, step_periods=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.pyramid_window_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.service.rater_weights["reliability"] = 1.0  # type: ignore[index]


def test_discount_rate_per_period_compounds_to_the_annual_rate():
    clv = ClvConfig(period_days=7, annual_discount_rate=0.10)
    assert (1 + clv.discount_rate_per_period) ** (365.25 / 7) == pytest.approx(1.10)


# --------------------------------------------------------------------------
# Guarded CLV on CDNOW (published fits: shared/data/README.md)
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_lines() -> pl.LazyFrame:
    rows = [line.split() for line in CDNOW.read_text().splitlines() if line.strip()]
    return pl.DataFrame({
        "customer_id": [r[0] for r in rows], "order_id": [f"{r[0]}-{i}" for i, r in enumerate(rows)],
        "ordered_at": [datetime.strptime(r[2], "%Y%m%d").replace(hour=12, tzinfo=timezone.utc) for r in rows],
        "quantity": [int(r[3]) for r in rows], "line_amount": [float(r[4]) for r in rows],
        "status": ["completed"] * len(rows),
    }, schema_overrides={"ordered_at": pl.Datetime("us", "UTC"), "quantity": pl.Int32}).lazy()


@pytest.mark.skipif(not CDNOW.is_file(), reason=f"CDNOW sample not found at {CDNOW}")
def test_clv_scores_fit_the_published_cdnow_models_and_guard_gamma_gamma(cdnow_lines):
    calibration_end = date(1997, 9, 30)
    completed = completed_lines_as_of(cdnow_lines, calibration_end)
    scores = clv_scores(completed, calibration_end, ClvConfig())
    fits = {row["model"]: row for row in scores.fits.iter_rows(named=True)}
    assert json.loads(fits["bgnbd"]["parameters"]) == pytest.approx(
        {"r": 0.2425945, "alpha": 4.4136019, "a": 0.7929199, "b": 2.4258881}, rel=1e-3)
    assert json.loads(fits["gamma_gamma"]["parameters"]) == pytest.approx({"p": 6.25, "q": 3.74, "v": 15.44}, rel=1e-2)
    assert fits["gamma_gamma"]["n_customers"] == 946
    customers = scores.customers
    assert customers.height == 2357 and set(customers["clv_status"]) == {"ok"}
    assert customers["p_alive"].is_between(0, 1).all() and (customers["clv_amount"] >= 0).all()

    # Too few repeat buyers for Gamma-Gamma: no value or CLV, but P(alive) is unaffected.
    strict = clv_scores(completed, calibration_end, ClvConfig(gamma_gamma_min_repeat_buyers=1000)).customers
    too_few = "insufficient_data: Gamma-Gamma needs at least 1000 repeat buyers, got 946"
    assert set(strict["clv_status"]) == set(strict["expected_value_status"]) == {too_few}
    assert strict["clv_amount"].null_count() == strict["expected_average_value"].null_count() == 2357
    assert set(strict["bgnbd_status"]) == set(strict["expected_purchases_status"]) == {"ok"}
    assert strict["p_alive"].equals(customers["p_alive"])
    assert strict["expected_purchases"].equals(customers["expected_purchases"])


def test_clv_scores_with_too_few_customers():
    lines = order_lines([("A", "o1", at(2025, 1, 1), "x", 10.0, None, "completed"),
                         ("A", "o2", at(2025, 6, 1), "x", 20.0, None, "completed")])
    scores = clv_scores(completed_lines_as_of(lines.lazy(), AS_OF), AS_OF, ClvConfig())
    row = scores.customers.row(0, named=True)
    few = "insufficient_data: BG/NBD needs at least 30 customers, got 1"
    assert row["bgnbd_status"] == row["expected_purchases_status"] == row["clv_status"] == few
    assert row["expected_value_status"] == "insufficient_data: Gamma-Gamma needs at least 30 repeat buyers, got 1"
    assert row["p_alive"] is None and row["expected_average_value"] is None and row["clv_amount"] is None
    assert scores.fits["status"].to_list() == [
        "insufficient_data: BG/NBD needs at least 30 customers, got 1",
        "insufficient_data: Gamma-Gamma needs at least 30 repeat buyers, got 1",
    ]


def test_spend_is_scored_only_where_the_fitted_mean_is_finite():
    # q < 1: the population mean spend p v / (q - 1) does not exist; p x + q - 1 = -0.4, 0.1, 1.1.
    fit = GammaGammaFit(p=0.5, q=0.6, v=10.0, log_likelihood=0.0, converged=True, iterations=0, n_customers=0,
                        message="given", elapsed_seconds=0.0)
    value, status = _spend_scores(fit, "ok", np.array([0.0, 1.0, 3.0]), np.array([0.0, 10.0, 20.0]))
    assert np.isnan(value[0]) and status[0] == NO_FINITE_SPEND
    assert value[1:] == pytest.approx([0.5 * (10 + 10) / 0.1, 0.5 * (10 + 60) / 1.1])  # p (v + x m) / (p x + q - 1)
    assert list(status[1:]) == ["ok", "ok"]


# --------------------------------------------------------------------------
# customer_scores and company_kpis on a small literal business
# --------------------------------------------------------------------------

LINES = order_lines([
    ("A", "a1", at(2025, 6, 1), "books", 100.0, 60.0, "completed"),
    ("A", "a2", at(2025, 12, 1), "music", 50.0, 30.0, "completed"),
    ("A", "a3", at(2025, 12, 5), "books", 500.0, 100.0, "cancelled"),
    ("B", "b1", at(2025, 11, 1), "books", 40.0, 30.0, "completed"),
    ("C", "c1", at(2024, 1, 1), "music", 10.0, None, "completed"),
    ("C", "c2", at(2024, 2, 1), "music", 10.0, None, "completed"),
    (None, "g1", at(2025, 12, 20), "books", 30.0, 20.0, "completed"),
    ("A", "a4", at(2026, 1, 2), "books", 70.0, 10.0, "completed"),  # after the as-of date
])
SURVEYS = pl.DataFrame([
    {"response_id": "r1", "customer_id": "A", "responded_at": at(2025, 12, 2), "per_reliability_score": 6.0,
     "exp_reliability_score": 5.0, "satisfaction_score": 7.0, "recommend_score": 10.0},
    {"response_id": "r2", "customer_id": None, "responded_at": at(2025, 12, 3), "satisfaction_score": 3.0,
     "recommend_score": 4.0},
], schema=RESPONSE_SCHEMA)
COMPLAINTS = pl.DataFrame([
    {"ticket_id": "t1", "customer_id": "B", "opened_at": at(2025, 11, 2), "first_response_at": at(2025, 11, 3),
     "resolved_at": at(2025, 11, 4), "severity": "high", "status": "closed", "is_timely_response": True},
], schema=COMPLAINT_SCHEMA)


@pytest.fixture(scope="module")
def customers() -> pl.DataFrame:
    return customer_scores(LINES, SURVEYS, COMPLAINTS, AS_OF)


def test_customer_scores_one_row_per_purchasing_customer(customers):
    assert customers.columns == CUSTOMER_COLUMNS
    assert customers["customer_id"].to_list() == ["A", "B", "C"]
    assert customers["as_of_date"].unique().to_list() == [AS_OF]


def test_customer_scores_hold_every_area(customers):
    a, b, c = customers.iter_rows(named=True)
    assert (a["frequency"], a["monetary_amount"], a["recency_days"]) == (2, 150.0, 30)
    # Ranks of 3: recency C < B < A, frequency B < A = C (tie at rank 2), spend C < B < A.
    assert (a["rfm_cell"], a["rfm_segment"]) == ("424", "potential_loyalist")  # FM = 3
    assert (c["rfm_cell"], c["rfm_segment"]) == ("121", "hibernating")  # FM = 2
    assert (a["lifecycle_stage"], b["lifecycle_stage"], c["lifecycle_stage"]) == ("active", "cooling", "lost")
    assert (a["tenure_days"], a["category_breadth"]) == (213, 2)
    assert (a["perception_reliability"], a["gap_reliability"], a["service_status"]) == (6.0, 1.0, "ok")
    assert (b["survey_responses"], b["service_status"]) == (0, "insufficient_data: no survey responses")
    assert (b["complaints"], b["median_resolution_hours"], b["complaint_times_status"]) == (1, 48.0, "ok")
    assert a["complaint_times_status"] == "insufficient_data: no complaints"
    assert a["loyalty_basis"] == "behavioural_and_attitudinal" and b["loyalty_basis"] == "behavioural_only"
    # Three customers cannot fit BG/NBD: churn band and CLV are null with the reason.
    assert a["p_alive"] is None and a["churn_risk_band"] is None
    assert a["clv_status"] == "insufficient_data: BG/NBD needs at least 30 customers, got 3"


def test_customer_scores_take_precomputed_clv(customers):
    precomputed = clv_scores(completed_lines_as_of(LINES.lazy(), AS_OF), AS_OF, ClvConfig())
    fake = dataclasses.replace(precomputed, customers=precomputed.customers.with_columns(
        pl.Series("p_alive", [0.9, 0.5, 0.1]), pl.lit("ok").alias("bgnbd_status")))
    out = customer_scores(LINES, SURVEYS, COMPLAINTS, AS_OF, clv=fake)
    assert out["churn_risk_band"].to_list() == ["low", "medium", "high"]


def test_company_kpis_one_row(customers):
    kpis = company_kpis(LINES, SURVEYS, None, COMPLAINTS, AS_OF, customers=customers)
    assert kpis.height == 1
    k = kpis.row(0, named=True)
    assert (k["completed_orders"], k["revenue_amount"]) == (6, 240.0)  # guest order included, cancelled not
    assert (k["customers"], k["repeat_customers"], k["repeat_purchase_rate"]) == (3, 2, pytest.approx(2 / 3))
    assert (k["customers_active"], k["customers_cooling"], k["customers_lost"]) == (1, 1, 1)
    assert k["gross_margin_amount"] == 80.0 and k["gross_margin_rate"] == pytest.approx(80 / 220)
    assert (k["nps"], k["csat"]) == (0.0, 0.5)  # 10 and 4; 7 and 3
    assert (k["complaints"], k["timely_response_share"]) == (1, 1.0)
    assert k["revenue_share_vip"] == pytest.approx(150 / 190)  # A's spend; C's is outside the window
    assert k["clv_status"] == "insufficient_data: BG/NBD needs at least 30 customers, got 3"
    assert (k["clv_customers"], k["clv_total_amount"]) == (0, None)
    # Nobody bought in the previous 90 days (2025-07-05..10-02): no retention rate, hence no alert on it.
    assert k["retention_rate"] is None
    assert k["retention_status"] == "insufficient_data: no customers active in the previous period"
    assert k["complaints_per_1000_orders"] == pytest.approx(1000 / 7)  # 7 orders placed, the cancelled one too
    alerts = kpi_alerts(kpis, ScoringConfig().kpi_thresholds)
    assert alerts["metric"].to_list() == ["csat", "complaints_per_1000_orders"]


def test_entry_points_accept_missing_inputs():
    out = customer_scores(LINES, None, pl.LazyFrame(), AS_OF)
    assert set(out["service_status"]) == {"insufficient_data: no survey responses"}
    assert set(out["complaints"]) == {0}
    # A survey export that measures only satisfaction: the other contract columns are null.
    only_satisfaction = pl.DataFrame({"response_id": ["r"], "customer_id": ["A"], "responded_at": [at(2025, 12, 1)],
                                      "satisfaction_score": [7.0]})
    a = customer_scores(LINES, only_satisfaction, None, AS_OF).row(0, named=True)
    assert (a["satisfaction_score"], a["perception_reliability"], a["service_status"]) == (7.0, None, "ok")
    kpis = company_kpis(None, None, None, None, AS_OF)
    assert kpis.height == 1 and kpis["customers"][0] == 0
    assert kpis["clv_status"][0] == "insufficient_data: no customers" and kpis["clv_total_amount"][0] is None
