"""KPI thresholds on small literal frames: fixed bounds, dynamic trailing bands (window, k, side,
too little history, nulls), as-of purity, and the threshold configuration."""
from __future__ import annotations

import statistics
from datetime import date, timedelta

import polars as pl
import pytest

from pipeline.scoring.alerts import (
    ALERT_SCHEMA,
    CHECK_COLUMNS,
    alerts_from_checks,
    check_threshold,
    kpi_alerts,
    kpi_threshold_checks,
    trailing_values,
)
from pipeline.scoring.config import KpiThreshold, ScoringConfig, scoring_config_from_dict

AS_OF = date(2025, 12, 31)


def history(values: list[float | None], *, end: date = AS_OF - timedelta(days=1), metric: str = "nps") -> pl.DataFrame:
    """kpi_daily-like rows, the last value on `end`, one per day going back."""
    days = [end - timedelta(days=i) for i in range(len(values))][::-1]
    return pl.DataFrame({"as_of_date": days, metric: values}, schema={"as_of_date": pl.Date, metric: pl.Float64})


def today(value: float | None, metric: str = "nps") -> pl.DataFrame:
    return pl.DataFrame({"as_of_date": [AS_OF], metric: [value]}, schema={"as_of_date": pl.Date, metric: pl.Float64})


# 28 prior days alternating 10 and 12: mean 11, sample sd sqrt(28/27).
TWENTY_EIGHT = [10.0, 12.0] * 14
MEAN, SD = statistics.mean(TWENTY_EIGHT), statistics.stdev(TWENTY_EIGHT)
DYNAMIC = KpiThreshold("nps", kind="dynamic", k=2.0, severity="critical")


def test_dynamic_band_is_the_trailing_mean_plus_minus_k_sd():
    check = check_threshold(11.5, DYNAMIC, AS_OF, history(TWENTY_EIGHT))
    assert check["status"] == "ok" and check["trailing_days"] == 28 and check["window_days"] == 28
    assert check["trailing_mean"] == pytest.approx(MEAN) and check["trailing_sd"] == pytest.approx(SD)
    assert (check["lower_bound"], check["upper_bound"]) == (pytest.approx(MEAN - 2 * SD), pytest.approx(MEAN + 2 * SD))
    high = check_threshold(MEAN + 2 * SD + 0.01, DYNAMIC, AS_OF, history(TWENTY_EIGHT))
    low = check_threshold(MEAN - 2 * SD - 0.01, DYNAMIC, AS_OF, history(TWENTY_EIGHT))
    assert (high["status"], high["bound"], low["status"], low["bound"]) == ("breach", "max", "breach", "min")
    assert high["message"] == "nps = 13.05 is above its 28-day band: mean 11 + 2 x sd 1.018 = 13.04 (over 28 prior days)"
    # k widens the band: the same value is fine at k = 3.
    wide = KpiThreshold("nps", kind="dynamic", k=3.0)
    assert check_threshold(MEAN + 2 * SD + 0.01, wide, AS_OF, history(TWENTY_EIGHT))["status"] == "ok"


def test_side_limits_which_departures_alert():
    below = KpiThreshold("nps", kind="dynamic", side="below", k=2.0)
    above = KpiThreshold("nps", kind="dynamic", side="above", k=2.0)
    assert check_threshold(20.0, below, AS_OF, history(TWENTY_EIGHT))["status"] == "ok"
    assert check_threshold(20.0, above, AS_OF, history(TWENTY_EIGHT))["status"] == "breach"
    assert check_threshold(0.0, below, AS_OF, history(TWENTY_EIGHT))["status"] == "breach"
    assert check_threshold(0.0, above, AS_OF, history(TWENTY_EIGHT))["upper_bound"] == pytest.approx(MEAN + 2 * SD)
    assert check_threshold(0.0, above, AS_OF, history(TWENTY_EIGHT))["lower_bound"] is None


def test_only_the_window_before_the_as_of_date_counts():
    window = KpiThreshold("nps", kind="dynamic", window_days=7, min_history_days=7, k=2.0)
    # 30 quiet days, then the last 7 before the as-of date jump to 100 +- 1.
    values = [10.0] * 23 + [99.0, 101.0] * 3 + [100.0]
    check = check_threshold(100.0, window, AS_OF, history(values))
    assert check["trailing_days"] == 7 and check["trailing_mean"] == pytest.approx(100.0)
    assert check["status"] == "ok"  # against the 28-day history it would be far above the band
    # As-of purity: the as-of date's own row and later rows (a warehouse loaded further) change nothing.
    later = pl.concat([history(values), history([5000.0, -5000.0, 7.0], end=AS_OF + timedelta(days=2))])
    assert check_threshold(100.0, window, AS_OF, later) == check
    assert trailing_values(later, "nps", AS_OF, 7).to_list() == values[-7:]


def test_too_little_history_gives_a_status_and_no_alert():
    short = history([10.0] * 5 + [None] * 9 + [12.0] * 8)  # 13 values with data in 22 days
    check = check_threshold(1000.0, DYNAMIC, AS_OF, short)
    assert check["status"] == "insufficient_data: 13 of the 28 days before 2025-12-31 have nps; 14 needed"
    assert check["trailing_days"] == 13 and check["lower_bound"] is None and check["upper_bound"] is None
    assert check["trailing_mean"] is None and check["bound"] is None
    # No history at all: a fresh warehouse, or the metric was never measured.
    assert check_threshold(1000.0, DYNAMIC, AS_OF, None)["status"].startswith("insufficient_data: 0 of the 28 days")
    assert check_threshold(1000.0, DYNAMIC, AS_OF, history([1.0] * 20, metric="csat"))["trailing_days"] == 0
    # One more valued day and the band applies.
    enough = history([10.0] * 5 + [None] * 8 + [12.0] * 9)
    assert check_threshold(1000.0, DYNAMIC, AS_OF, enough)["status"] == "breach"


def test_nulls_and_nans_are_not_history_and_a_null_value_is_not_a_breach():
    values = [10.0, None, float("nan"), 12.0] * 7
    check = check_threshold(11.0, DYNAMIC, AS_OF, history(values))
    assert check["trailing_days"] == 14 and check["trailing_mean"] == pytest.approx(11.0)
    unmeasured = check_threshold(None, DYNAMIC, AS_OF, history(values))
    assert unmeasured["status"] == "not_measured: nps is null" and unmeasured["lower_bound"] is not None
    assert kpi_alerts(today(float("nan")), [DYNAMIC], history(values)).is_empty()


def test_a_flat_history_alerts_on_any_real_change_but_not_on_float_noise():
    flat = history([0.25] * 28)
    assert check_threshold(0.25 + 1e-15, DYNAMIC, AS_OF, flat)["status"] == "ok"
    assert check_threshold(0.26, DYNAMIC, AS_OF, flat)["status"] == "breach"


def test_checks_have_one_row_per_threshold_and_alerts_one_per_breach():
    kpis = pl.DataFrame({"as_of_date": [AS_OF], "nps": [30.0], "csat": [0.5], "sla_breach_share": [None]},
                        schema_overrides={"sla_breach_share": pl.Float64})
    thresholds = [KpiThreshold("nps", min=0.0), DYNAMIC, KpiThreshold("csat", min=0.7, severity="warning"),
                  KpiThreshold("sla_breach_share", max=0.1, severity="critical")]
    checks = kpi_threshold_checks(kpis, thresholds, history(TWENTY_EIGHT))
    assert checks.select("metric", "threshold_kind", "status").rows() == [
        ("nps", "fixed", "ok"), ("nps", "dynamic", "breach"), ("csat", "fixed", "breach"),
        ("sla_breach_share", "fixed", "not_measured: sla_breach_share is null")]
    assert set(CHECK_COLUMNS) <= set(checks.columns)
    alerts = alerts_from_checks(checks)
    assert alerts.schema == pl.Schema(ALERT_SCHEMA)
    assert alerts.select("metric", "threshold_kind", "bound", "severity").rows() == [
        ("nps", "dynamic", "max", "critical"), ("csat", "fixed", "min", "warning")]
    assert alerts["threshold"].to_list() == [pytest.approx(MEAN + 2 * SD), 0.7]
    assert alerts["trailing_days"].to_list() == [28, None] and alerts["sd_multiplier"].to_list() == [2.0, None]
    assert alerts["message"][1] == "csat = 0.5 is below the minimum 0.7"


def test_history_with_two_rows_for_a_date_is_refused():
    doubled = pl.concat([history(TWENTY_EIGHT), history([1.0])])
    with pytest.raises(ValueError, match="more than one row for a date"):
        check_threshold(1.0, DYNAMIC, AS_OF, doubled)


def test_threshold_configuration():
    dynamic = KpiThreshold("nps", kind="dynamic")
    assert (dynamic.window_days, dynamic.k, dynamic.min_history_days, dynamic.side) == (28, 3.0, 14, "both")
    config = scoring_config_from_dict({"kpi_thresholds": [
        {"metric": "nps", "min": 0},
        {"metric": "nps", "kind": "dynamic", "window_days": 14, "k": 2.5, "min_history_days": 7, "side": "below"}]})
    assert config.kpi_thresholds[1] == KpiThreshold("nps", kind="dynamic", window_days=14, k=2.5, min_history_days=7,
                                                    side="below")
    bad = [
        ({"kind": "dynamic", "min": 1.0}, "use side, not min/max"),
        ({"min": 1.0, "k": 2.0}, r"\['k'\] only apply to kind: dynamic"),
        ({"kind": "dynamic", "min_history_days": 1}, r"min_history_days must lie in \[2, window_days\]"),
        ({"kind": "dynamic", "window_days": 7, "min_history_days": 8}, "min_history_days must lie"),
        ({"kind": "dynamic", "k": 0}, "k must be positive"),
        ({"kind": "dynamic", "side": "up"}, "side must be one of"),
        ({"kind": "rolling"}, "kind must be one of"),
    ]
    for fields, message in bad:
        with pytest.raises(ValueError, match=message):
            KpiThreshold("nps", **fields)
    with pytest.raises(ValueError, match=r"more than one threshold of the same kind on \[\('nps', 'fixed'\)\]"):
        ScoringConfig(kpi_thresholds=(KpiThreshold("nps", min=0.0), KpiThreshold("nps", max=50.0)))


def test_the_default_thresholds_cover_the_headline_kpis():
    metrics = {(t.metric, t.kind) for t in ScoringConfig().kpi_thresholds}
    for metric in ("repeat_purchase_rate", "retention_rate", "nps", "rater_gap_index", "sla_breach_share",
                   "revenue_share_vip"):
        assert any(m == metric for m, _ in metrics), metric
    assert any(kind == "dynamic" for _, kind in metrics)
