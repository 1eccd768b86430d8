"""The run report's chart specs and page, built from small literal frames (no warehouse, no browser)."""
from __future__ import annotations

import json
import re
from datetime import date

import polars as pl
import pytest

from pipeline.report import charts, page, report_path
from pipeline.report.data import ReportData, sla_parameters
from pipeline.scoring.config import ComplaintConfig, KpiThreshold, ScoringConfig

AS_OF = date(2025, 12, 31)
PYRAMID = pl.DataFrame({
    "pyramid_tier": ["vip", "key", "ordinary", "small", "inactive"], "tier_rank": [1, 2, 3, 4, 5],
    "customers": [2, 8, 30, 160, 0], "revenue_amount": [500.0, 300.0, 150.0, 50.0, 0.0],
    "revenue_share": [0.5, 0.3, 0.15, 0.05, 0.0],
})
RFM = pl.DataFrame({"r_score": [5, 5, 1], "f_score": [5, 1, 1], "customers": [10, 3, 40],
                    "mean_monetary": [900.0, 120.0, 60.0]})
CLV = pl.DataFrame({"bin": [0, 1, 29], "bin_start": [0.0, 10.0, 290.0], "bin_end": [10.0, 20.0, 300.0],
                    "customers": [50, 20, 3], "scored": [73] * 3, "p99": [300.0] * 3, "max_clv": [950.0] * 3})
SLA = pl.DataFrame({
    "severity": ["low", "critical", "critical", "high", "none"],
    "sla_hours": [240.0, 24.0, 24.0, 72.0, 120.0],
    "outcome": ["open, within SLA", "resolved in time", "resolved late", "open, past SLA", "resolved in time"],
    "tickets": [4, 6, 2, 1, 3],
})
KPIS = {"as_of_date": AS_OF, "customers": 200, "survey_responses": 12, "expectation_source": "dimension",
        "service_status": "ok", "clv_status": "ok", "nps": 12.5, "csat": 0.8,
        **{f"perception_{d}": 5.0 for d in ("tangibles", "reliability", "responsiveness", "assurance", "empathy")},
        **{f"expectation_{d}": 6.0 for d in ("tangibles", "reliability", "responsiveness", "assurance")},
        "expectation_empathy": None,
        **{f"gap_{d}": -1.0 for d in ("tangibles", "reliability", "responsiveness", "assurance")}, "gap_empathy": None}
HISTORY = pl.DataFrame([{**KPIS, "as_of_date": date(2025, 12, 20), "csat": 0.6}, KPIS])
ALERTS = pl.DataFrame({"as_of_date": [date(2025, 12, 20)], "metric": ["csat"], "threshold_kind": ["fixed"],
                       "value": [0.6], "threshold": [0.7], "bound": ["min"], "severity": ["warning"],
                       "message": ["csat = 0.6 is below the minimum 0.7"]})
# The dynamic csat band on the two history days: none yet on the first (too little history).
BOUNDS = pl.DataFrame({"as_of_date": [date(2025, 12, 20), AS_OF], "metric": ["csat", "csat"],
                       "lower_bound": [None, 0.65], "upper_bound": [None, 0.95]})
QUALITY = pl.DataFrame({"source": ["orders", "<b>x</b>"], "run_batches": [2, 1], "run_raw_rows": [100, 0],
                        "run_accepted_rows": [97, 0], "run_quarantined_rows": [3, 0], "total_batches": [5, 1],
                        "total_accepted_rows": [400, 0], "total_quarantined_rows": [9, 0]})
REASONS = pl.DataFrame({"source": ["orders", "orders"], "reason_code": ["unknown_customer", "exact_duplicate"],
                        "quarantined_rows": [2, 1]})
EXPECTATIONS = pl.DataFrame({"source": ["orders"], "expectations": [17], "failed_expectations": [1]})


def empty(*columns: str) -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.Null for c in columns})


def full_data() -> ReportData:
    return ReportData(as_of=AS_OF, pyramid=PYRAMID, rfm_grid=RFM, clv_bins=CLV, kpi_history=HISTORY, kpi_alerts=ALERTS,
                      kpi_bounds=BOUNDS,
                      complaint_sla=SLA, data_quality=QUALITY, quarantine_reasons=REASONS, expectations=EXPECTATIONS)


def empty_data() -> ReportData:
    """What the queries return on a warehouse where nothing was scored or loaded for the date."""
    return ReportData(as_of=AS_OF, pyramid=empty(*PYRAMID.columns), rfm_grid=empty(*RFM.columns),
                      clv_bins=empty(*CLV.columns), kpi_history=empty(*HISTORY.columns),
                      kpi_alerts=empty(*ALERTS.columns), kpi_bounds=empty(*BOUNDS.columns),
                      complaint_sla=empty(*SLA.columns),
                      data_quality=empty(*QUALITY.columns), quarantine_reasons=empty(*REASONS.columns),
                      expectations=empty(*EXPECTATIONS.columns))


def units(spec: dict, data: dict | None = None) -> list[dict]:
    """Every single-view spec inside a (layered, concatenated) spec, each with the data it draws."""
    data = spec.get("data", data)
    nested = [s for key in ("layer", "hconcat", "vconcat", "concat") for s in spec.get(key, [])]
    return [spec | {"data": data}] if not nested else [u for s in nested for u in units(s, data)]


def mark(unit: dict) -> str:
    return unit["mark"] if isinstance(unit["mark"], str) else unit["mark"]["type"]


def values(spec: dict, unit: dict) -> list[dict]:
    """A unit's rows, inline or from the top-level datasets Altair moves them to."""
    data = unit.get("data", {})
    return data["values"] if "values" in data else spec["datasets"][data["name"]]


def field(unit: dict, channel: str) -> str | None:
    return unit["encoding"].get(channel, {}).get("field")


def no_data_messages(spec: dict) -> list[str]:
    """The no-data texts in a spec, line breaks undone."""
    return [m.replace("\n", " ") for m in raw_no_data_messages(spec)]


def raw_no_data_messages(spec: dict) -> list[str]:
    return [values(spec, u)[0]["message"] for u in units(spec) if u.get("description", "").startswith("No data")]


@pytest.fixture(autouse=True)
def small_bundle(monkeypatch):
    """The real Vega bundle is ~0.9 MB and takes seconds to build; the browser test uses it."""
    monkeypatch.setattr(page, "javascript_bundle", lambda: "window.vegaEmbed = function () { return Promise.resolve(); };")


def test_pyramid_is_a_centred_bar_per_tier_beside_revenue_share():
    spec = charts.pyramid_chart(PYRAMID).to_dict()
    left, right = (units(side, spec.get("data")) for side in spec["hconcat"])
    bars = [u for u in left if mark(u) == "bar"]
    assert [(field(u, "x"), field(u, "x2"), field(u, "y")) for u in bars] == [("left", "right", "pyramid_tier")]
    assert bars[0]["encoding"]["y"]["sort"] == ["vip", "key", "ordinary", "small", "inactive"]
    rows = {r["pyramid_tier"]: r for r in values(spec, bars[0])}
    assert rows["small"]["right"] == pytest.approx(0.4) and rows["small"]["left"] == pytest.approx(-0.4)
    assert [mark(u) for u in right] == ["bar", "text"] and field(right[0], "x") == "revenue_share"


def test_rfm_grid_is_a_heatmap_of_customers_over_r_and_f():
    spec = charts.rfm_heatmap(RFM).to_dict()
    cells, labels = units(spec)
    assert mark(cells) == "rect" and mark(labels) == "text"
    assert (field(cells, "x"), field(cells, "y"), field(cells, "color")) == ("f_score", "r_score", "customers")
    assert cells["encoding"]["x"]["scale"]["domain"] == [1, 2, 3, 4, 5]
    assert cells["encoding"]["y"]["scale"]["domain"] == [5, 4, 3, 2, 1]  # most recent on top
    assert field(labels, "text") == "customers"


def test_clv_histogram_uses_the_bins_from_sql():
    spec = charts.clv_histogram(CLV, "unused", 364).to_dict()
    assert mark(spec) == "bar"
    assert (field(spec, "x"), field(spec, "x2"), field(spec, "y")) == ("bin_start", "bin_end", "customers")
    assert spec["encoding"]["x"]["bin"] == "binned"
    assert "73 customers" in spec["title"]["subtitle"][0] and "950" in spec["title"]["subtitle"][1]


def test_rater_shows_perception_and_expectation_dots_joined_by_the_gap():
    spec = charts.rater_chart(KPIS).to_dict()
    rule, points, text = units(spec)
    assert mark(rule) == "rule" and (field(rule, "x"), field(rule, "x2")) == ("expectation", "perception")
    assert mark(points) == "point" and field(points, "color") == "measure" and field(points, "y") == "dimension"
    rows = values(spec, points)
    # Empathy has no expectation: its perception dot stays, and it gets no gap bar.
    assert len(rows) == 9 and {r["measure"] for r in rows if r["dimension"] == "empathy"} == {"perception"}
    assert {r["dimension"] for r in values(spec, rule)} == {"tangibles", "reliability", "responsiveness", "assurance"}
    assert points["encoding"]["x"]["scale"]["domain"] == [1, 7]
    assert "12 responses" in spec["title"]["subtitle"][0]


def test_complaint_sla_stacks_outcomes_per_severity_worst_severity_first():
    spec = charts.complaint_sla_chart(SLA, AS_OF).to_dict()
    assert mark(spec) == "bar" and field(spec, "color") == "outcome"
    assert spec["encoding"]["color"]["scale"]["domain"] == list(charts.SLA_OUTCOMES)
    assert spec["encoding"]["y"]["sort"] == ["critical (24 h)", "high (72 h)", "low (240 h)", "none (120 h)"]
    # Breached: 2 resolved late + 1 open past SLA; decided: those + 9 resolved in time.
    assert "SLA breached on 3 of 12 decided tickets (25.0%)" in spec["title"]["subtitle"][1]


def test_kpi_trend_has_a_panel_per_threshold_with_its_breach_band_and_alerts():
    thresholds = (KpiThreshold("csat", min=0.7), KpiThreshold("nps", min=0.0, max=80.0, severity="critical"),
                  KpiThreshold("not_a_kpi", max=1.0))
    spec = charts.kpi_trend_chart(HISTORY, ALERTS, thresholds, AS_OF).to_dict()
    csat, nps, missing = spec["concat"]
    assert spec["columns"] == 4 and csat["title"]["text"] == "csat"
    band, rule, line, alert = csat["layer"]
    assert mark(band) == "rect" and (field(band, "y"), field(band, "y2")) == ("band_lo", "band_hi")
    assert [r["band_hi"] for r in values(spec, band)] == [0.7] and mark(rule) == "rule"
    assert mark(line) == "line" and (field(line, "x"), field(line, "y")) == ("as_of_date", "value")
    assert [r["value"] for r in values(spec, line)] == [0.6, 0.8]
    assert mark(alert) == "point" and values(spec, alert)[0]["as_of_date"] == "2025-12-20"
    # Both bounds: two bands, no alert layer; the y range covers values and thresholds.
    assert len(values(spec, nps["layer"][0])) == 2 and len(nps["layer"]) == 3
    lo, hi = nps["layer"][0]["encoding"]["y"]["scale"]["domain"]
    assert lo < 0.0 and hi > 80.0
    assert no_data_messages(missing) == ["No data: no such kpi_daily column"]


def test_a_dynamic_threshold_draws_the_band_in_force_each_day_and_only_its_own_alerts():
    dynamic = KpiThreshold("csat", kind="dynamic", side="below", window_days=28, k=3.0, min_history_days=14)
    spec = charts.kpi_trend_chart(HISTORY, ALERTS, (dynamic,), AS_OF, BOUNDS).to_dict()
    (panel,) = spec["concat"]
    area, lower, upper, line = panel["layer"]  # the fixed csat alert is not this threshold's: no diamonds
    assert mark(area) == "area" and (field(area, "y"), field(area, "y2")) == ("lower_bound", "upper_bound")
    assert values(spec, area) == [{"as_of_date": "2025-12-31", "lower_bound": 0.65, "upper_bound": 0.95}]
    assert (mark(lower), field(lower, "y"), field(upper, "y")) == ("line", "lower_bound", "upper_bound")
    assert mark(line) == "line" and [r["value"] for r in values(spec, line)] == [0.6, 0.8]
    assert "28-day mean ± 3 sd" in panel["title"]["subtitle"]
    lo, hi = area["encoding"]["y"]["scale"]["domain"]
    assert lo < 0.6 and hi > 0.95  # values and band both in view
    fired = ALERTS.with_columns(pl.lit("dynamic").alias("threshold_kind"))
    assert mark(charts.kpi_panel(HISTORY, fired, dynamic, BOUNDS).to_dict()["layer"][-1]) == "point"


def test_quarantine_bars_per_source_by_reason():
    spec = charts.quarantine_chart(REASONS).to_dict()
    assert mark(spec) == "bar" and (field(spec, "y"), field(spec, "color")) == ("source", "reason_code")


@pytest.mark.parametrize("build, reason", [
    (lambda d: charts.pyramid_chart(d.pyramid), "no pyramid"),
    (lambda d: charts.rfm_heatmap(d.rfm_grid), "no customer was scored"),
    (lambda d: charts.clv_histogram(d.clv_bins, charts.clv_missing_reason({}), 364), "no customer has a CLV"),
    (lambda d: charts.rater_chart(d.kpis), "no survey responses"),
    (lambda d: charts.complaint_sla_chart(d.complaint_sla, d.as_of), "no complaint opened by 2025-12-31"),
    (lambda d: charts.quarantine_chart(d.quarantine_reasons), "quarantined no rows"),
])
def test_every_chart_says_no_data_instead_of_failing(build, reason):
    spec = build(empty_data()).to_dict()
    assert charts.is_no_data(spec) and mark(spec) == "text"
    assert reason in " ".join(no_data_messages(spec)).replace("\n", " ")


def test_no_data_explains_missing_scores_with_their_status():
    assert "CLV not scored: too few customers" in charts.clv_missing_reason(
        {"clv_status": "insufficient_data: too few customers"})
    spec = charts.rater_chart({"survey_responses": 0, "service_status": "insufficient_data: no survey responses"}).to_dict()
    assert no_data_messages(spec) == ["No data: no survey responses"]
    long = charts.no_data("t", "failed: " + "x" * 500).to_dict()
    assert all(len(line) <= 60 for line in raw_no_data_messages(long)[0].split("\n"))


def test_kpi_trend_panels_say_no_data_without_history():
    spec = charts.kpi_trend_chart(empty_data().kpi_history, empty_data().kpi_alerts, ScoringConfig().kpi_thresholds,
                                  AS_OF).to_dict()
    assert len(spec["concat"]) == len(ScoringConfig().kpi_thresholds)
    assert all(no_data_messages(p) == ["No data: no KPI row loaded yet"] for p in spec["concat"])
    never_measured = HISTORY.with_columns(pl.lit(None, pl.Float64).alias("retention_rate"))
    spec = charts.kpi_panel(never_measured, ALERTS, KpiThreshold("retention_rate", min=0.2)).to_dict()
    assert no_data_messages(spec) == ["No data: not measured yet"]


def test_sla_parameters_fill_unconfigured_severities_with_the_default():
    params = sla_parameters(ComplaintConfig(sla_hours={"critical": 4.0}, default_sla_hours=50.0))
    assert params == {"sla_low": 50.0, "sla_medium": 50.0, "sla_high": 50.0, "sla_critical": 4.0, "sla_default": 50.0}


def test_script_json_cannot_close_the_script_element_and_refuses_nan():
    assert "</" not in page.script_json({"a": "</script><script>alert(1)</script>"})
    assert json.loads(page.script_json({"a": "</script>"})) == {"a": "</script>"}
    with pytest.raises(ValueError):
        page.script_json({"a": float("nan")})


def chart_specs(html: str) -> dict:
    return json.loads(re.search(r'<script type="application/json" id="chart-specs">(.*?)</script>', html, re.S).group(1))


def test_page_has_a_container_per_chart_the_specs_and_the_quality_table():
    data = full_data()
    html = page.render_page(data, charts.report_charts(data, ScoringConfig()), "duckdb")
    specs = chart_specs(html)
    assert list(specs) == ["pyramid", "rfm-grid", "clv", "rater", "complaint-sla", "quarantine", "kpi-trend"]
    for chart_id in specs:
        assert f'id="chart-{chart_id}"' in html
    assert "data-no-data" not in html
    assert "window.vegaEmbed" in html and "vegaEmbed(el, specs[id], options)" in html
    assert 'data-report-status="loading"' in html and 'window.addEventListener("error"' in html
    # Headline tiles, the day's alerts only, and the data-quality table, escaped.
    assert "+12" in html and "80.0%" in html
    assert "No KPI broke its threshold." in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "3.00%" in html and "1 of 17" in html


def test_page_of_an_empty_warehouse_marks_every_chart_as_no_data():
    data = empty_data()
    html = page.render_page(data, charts.report_charts(data, ScoringConfig()), "postgresql")
    specs = chart_specs(html)
    assert [i for i, s in specs.items() if not charts.is_no_data(s)] == ["kpi-trend"]  # its panels say it
    assert html.count('data-no-data="true"') == 6
    assert "No batch loaded yet." in html and "n/a" in html and "No KPIs were scored for this date." in html


def test_report_path_is_per_date():
    assert report_path("/x/reports", AS_OF).as_posix() == "/x/reports/run_2025-12-31.html"
