"""The run report's charts as Altair (Vega-Lite) specs, each built from a small frame of report data.

Every builder returns a chart even without data: a "no data" panel that says why, so one empty
source never breaks the report. What each chart shows: docs/report.md.
"""
from __future__ import annotations

import textwrap
from datetime import date

import altair as alt
import polars as pl

from pipeline.report.data import ReportData
from pipeline.schemas import RATER_DIMENSIONS
from pipeline.scoring.config import SEVERITIES, KpiThreshold, ScoringConfig

WIDTH, HEIGHT = 420, 220
PANEL_WIDTH, PANEL_HEIGHT = 230, 130
ALERT_RED = "#d62728"
ALLOWED_GREY = "#9e9e9e"  # a dynamic threshold's allowed band
# Complaint SLA outcomes, good to bad, with their colours.
SLA_OUTCOMES = {
    "resolved in time": "#2ca02c",
    "open, within SLA": "#9ecae1",
    "closed, no resolution time": "#c7c7c7",
    "open, past SLA": "#ff7f0e",
    "resolved late": ALERT_RED,
}
BREACHED = ("open, past SLA", "resolved late")
NO_DATA = "No data"
EXPECTATION_SOURCES = {"dimension": "expectations asked per dimension", "overall": "one overall expectation",
                       "mixed": "expectations per dimension or overall"}
DATE_AXIS = alt.Axis(format="%Y-%m-%d", labelAngle=-30, labelOverlap=True)


def no_data(title: str | alt.Title, reason: str, width: int = WIDTH, height: int = 80) -> alt.Chart:
    """A panel that renders the reason in place of a chart; its description says so, for tests and readers."""
    reason = reason if len(reason) <= 240 else reason[:237] + "..."
    message = "\n".join(textwrap.wrap(f"{NO_DATA}: {reason}", width=max(width // 8, 20)))
    return (
        alt.Chart(alt.Data(values=[{"message": message}]))
        .mark_text(fontSize=13, color="#666", lineBreak="\n")
        .encode(text="message:N")
        .properties(title=title, width=width, height=height, description=f"{NO_DATA}: {reason}")
    )


def is_no_data(spec: dict) -> bool:
    """A whole chart (not one panel of it) that is a no-data panel."""
    return spec.get("description", "").startswith(NO_DATA)


def pyramid_chart(pyramid: pl.DataFrame) -> alt.TopLevelMixin:
    """Tiers top-down as a centred pyramid of customers, next to each tier's share of revenue."""
    title = alt.Title("Customer pyramid",
                      subtitle="Customers per tier (left) and the tier's share of look-back revenue (right)")
    if pyramid.is_empty() or not pyramid["customers"].sum():
        return no_data(title, "no pyramid for this date (no customer was scored)")
    total = pyramid["customers"].sum()
    frame = pyramid.sort("tier_rank").with_columns((pl.col("customers") / total).alias("customer_share")).with_columns(
        (-pl.col("customer_share") / 2).alias("left"),
        (pl.col("customer_share") / 2).alias("right"),
        pl.format("{} ({}%)", pl.col("customers"), (pl.col("customer_share") * 100).round(1)).alias("customers_label"),
        pl.format("{}%", (pl.col("revenue_share") * 100).round(1)).alias("revenue_label"),
    )
    tiers = frame["pyramid_tier"].to_list()
    y = alt.Y("pyramid_tier:N", sort=tiers, title=None)
    color = alt.Color("pyramid_tier:N", sort=tiers, scale=alt.Scale(scheme="tableau10"), legend=None)
    tooltip = [alt.Tooltip("pyramid_tier:N", title="tier"), alt.Tooltip("customers:Q", format=","),
               alt.Tooltip("customer_share:Q", format=".1%"), alt.Tooltip("revenue_amount:Q", format=",.0f"),
               alt.Tooltip("revenue_share:Q", format=".1%")]
    base = alt.Chart(frame)
    customers = alt.layer(
        base.mark_bar().encode(x=alt.X("left:Q", axis=None, scale=alt.Scale(domain=[-0.5, 0.5])), x2="right:Q",
                               y=y, color=color, tooltip=tooltip),
        base.mark_text(align="left", dx=4).encode(x="right:Q", y=y, text="customers_label:N"),
    ).properties(width=WIDTH // 2 + 40, height=HEIGHT, title="customers")
    revenue = alt.layer(
        base.mark_bar().encode(x=alt.X("revenue_share:Q", title=None, axis=alt.Axis(format="%"),
                                       scale=alt.Scale(domain=[0, 1])),
                               y=alt.Y("pyramid_tier:N", sort=tiers, axis=None), color=color, tooltip=tooltip),
        base.mark_text(align="left", dx=4).encode(x="revenue_share:Q", y=alt.Y("pyramid_tier:N", sort=tiers, axis=None),
                                                  text="revenue_label:N"),
    ).properties(width=WIDTH // 2 - 40, height=HEIGHT, title="share of revenue")
    return alt.hconcat(customers, revenue, spacing=16).properties(title=title)


def rfm_heatmap(grid: pl.DataFrame) -> alt.TopLevelMixin:
    """Customers per R x F score cell; colour and label are the count, the tooltip adds mean spend."""
    title = alt.Title("RFM grid",
                      subtitle="Customers per recency (R) and frequency (F) score; 5 = most recent, most frequent")
    if grid.is_empty():
        return no_data(title, "no customer was scored on this date")
    scores = [1, 2, 3, 4, 5]
    half = grid["customers"].max() / 2
    base = alt.Chart(grid).encode(
        x=alt.X("f_score:O", title="F score", scale=alt.Scale(domain=scores), axis=alt.Axis(labelAngle=0)),
        y=alt.Y("r_score:O", title="R score", scale=alt.Scale(domain=scores[::-1])),
    )
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color("customers:Q", scale=alt.Scale(scheme="blues"), title="customers"),
        tooltip=[alt.Tooltip("r_score:O", title="R"), alt.Tooltip("f_score:O", title="F"),
                 alt.Tooltip("customers:Q", format=","),
                 alt.Tooltip("mean_monetary:Q", title="mean spend", format=",.2f")],
    )
    labels = base.mark_text(baseline="middle").encode(
        text=alt.Text("customers:Q", format=","),
        color=alt.condition(alt.datum.customers > half, alt.value("white"), alt.value("black")),
    )
    return alt.layer(cells, labels).properties(title=title, width=WIDTH - 80, height=HEIGHT)


def clv_histogram(bins: pl.DataFrame, missing_reason: str, horizon_days: float) -> alt.TopLevelMixin:
    """Customers per CLV bin (binned in SQL up to the 99th percentile; the last bin holds the tail)."""
    title = alt.Title("CLV distribution", subtitle=f"Customers by expected value over the next {horizon_days:g} days")
    if bins.is_empty():
        return no_data(title, missing_reason)
    scored, top = bins["scored"][0], bins["max_clv"][0]
    title = alt.Title("CLV distribution", subtitle=[
        f"{scored:,} customers by expected value over the next {horizon_days:g} days",
        f"the last bar also holds the top 1% (up to {top:,.0f})",
    ])
    return (
        alt.Chart(bins).mark_bar(color="#4c78a8")
        .encode(x=alt.X("bin_start:Q", bin="binned", title="CLV (base currency)", axis=alt.Axis(format=",.0f")),
                x2="bin_end:Q",
                y=alt.Y("customers:Q", title="customers"),
                tooltip=[alt.Tooltip("bin_start:Q", title="from", format=",.2f"),
                         alt.Tooltip("bin_end:Q", title="to", format=",.2f"), alt.Tooltip("customers:Q", format=",")])
        .properties(title=title, width=WIDTH, height=HEIGHT)
    )


def rater_frame(kpis: dict) -> pl.DataFrame:
    """One row per RATER dimension: mean perception, expectation and their gap (nulls where not asked)."""
    return pl.DataFrame(
        [{"dimension": d, "perception": kpis.get(f"perception_{d}"), "expectation": kpis.get(f"expectation_{d}"),
          "gap": kpis.get(f"gap_{d}")} for d in RATER_DIMENSIONS],
        schema={"dimension": pl.String, "perception": pl.Float64, "expectation": pl.Float64, "gap": pl.Float64},
    )


def rater_chart(kpis: dict) -> alt.TopLevelMixin:
    """Per dimension, expectation and perception as two dots joined by a bar: the SERVQUAL gap."""
    responses = kpis.get("survey_responses") or 0
    title = alt.Title("Service quality (RATER)", subtitle="Mean perception vs expectation per dimension, 1-7 scale")
    dims = rater_frame(kpis).filter(pl.col("perception").is_not_null() | pl.col("expectation").is_not_null())
    if not responses or dims.is_empty():
        status = kpis.get("service_status") or ""
        reason = status.removeprefix("insufficient_data: ") if status and status != "ok" else "no survey responses"
        return no_data(title, reason)
    title = alt.Title("Service quality (RATER)", subtitle=[
        f"Mean perception vs expectation per dimension, 1-7 scale, {responses:,} responses",
        f"{EXPECTATION_SOURCES.get(kpis.get('expectation_source'), 'no expectations asked')}; "
        "gap = perception - expectation",
    ])
    points = dims.unpivot(index="dimension", on=["expectation", "perception"], variable_name="measure",
                          value_name="score").drop_nulls("score")
    gaps = dims.drop_nulls(["perception", "expectation"]).with_columns(
        pl.max_horizontal("perception", "expectation").alias("label_at"),
        pl.format("gap {}", pl.col("gap").round(2)).alias("gap_label"),
    )
    y = alt.Y("dimension:N", sort=list(RATER_DIMENSIONS), title=None)
    x_scale = alt.Scale(domain=[1, 7])
    layers = [
        alt.Chart(gaps).mark_rule(color="#999", strokeWidth=3).encode(
            x=alt.X("expectation:Q", scale=x_scale, title="mean score"), x2="perception:Q", y=y),
        alt.Chart(points).mark_point(filled=True, size=140, opacity=1).encode(
            x=alt.X("score:Q", scale=x_scale, title="mean score"), y=y,
            color=alt.Color("measure:N", title=None, legend=alt.Legend(orient="bottom"),
                            scale=alt.Scale(domain=["expectation", "perception"], range=["#999", "#1f77b4"])),
            tooltip=["dimension:N", "measure:N", alt.Tooltip("score:Q", format=".2f")]),
        alt.Chart(gaps).mark_text(align="left", dx=10, fontSize=11).encode(
            x=alt.X("label_at:Q", scale=x_scale), y=y, text="gap_label:N"),
    ]
    return alt.layer(*layers).properties(title=title, width=WIDTH - 60, height=HEIGHT - 60)


def severity_order(severities: list[str]) -> list[str]:
    known = [s for s in reversed(SEVERITIES) if s in severities]
    return known + sorted(set(severities) - set(known))


def complaint_sla_chart(sla: pl.DataFrame, as_of: date) -> alt.TopLevelMixin:
    """Tickets per severity stacked by SLA outcome; the subtitle gives the breach share (decided tickets)."""
    title = alt.Title("Complaint SLA", subtitle="Tickets per severity by resolution-SLA outcome")
    if sla.is_empty():
        return no_data(title, f"no complaint opened by {as_of}")
    breached = sla.filter(pl.col("outcome").is_in(BREACHED))["tickets"].sum()
    decided = breached + sla.filter(pl.col("outcome") == "resolved in time")["tickets"].sum()
    share = f"{breached / decided:.1%}" if decided else "n/a"
    title = alt.Title("Complaint SLA", subtitle=[
        f"{sla['tickets'].sum():,} tickets opened by {as_of}, as they stood at its end",
        f"SLA breached on {breached:,} of {decided:,} decided tickets ({share})",
    ])
    frame = sla.with_columns(
        pl.format("{} ({} h)", pl.col("severity"), pl.col("sla_hours").round(0).cast(pl.Int64)).alias("severity_sla"),
        pl.col("outcome").replace_strict({o: i for i, o in enumerate(SLA_OUTCOMES)}, default=len(SLA_OUTCOMES),
                                         return_dtype=pl.Int64).alias("outcome_rank"),
    )
    order = severity_order(frame["severity"].unique().to_list())
    labels = [frame.filter(pl.col("severity") == s)["severity_sla"][0] for s in order]
    return (
        alt.Chart(frame).mark_bar()
        .encode(y=alt.Y("severity_sla:N", sort=labels, title="severity (SLA)"),
                x=alt.X("sum(tickets):Q", title="tickets", stack="zero", axis=alt.Axis(tickMinStep=1, format=",d")),
                color=alt.Color("outcome:N", title=None, legend=alt.Legend(orient="bottom", columns=3),
                                scale=alt.Scale(domain=list(SLA_OUTCOMES), range=list(SLA_OUTCOMES.values()))),
                order=alt.Order("outcome_rank:Q"),
                tooltip=["severity:N", "outcome:N", alt.Tooltip("tickets:Q", format=","),
                         alt.Tooltip("sla_hours:Q", title="SLA hours")])
        .properties(title=title, width=WIDTH - 40, height=HEIGHT - 80)
    )


def threshold_text(threshold: KpiThreshold) -> str:
    if threshold.kind == "dynamic":
        return (f"{threshold.window_days}-day mean ± {threshold.k:g} sd, alerts {threshold.side} "
                f"({threshold.severity})")
    bounds = [f"min {threshold.min:g}" if threshold.min is not None else "",
              f"max {threshold.max:g}" if threshold.max is not None else ""]
    return " / ".join(b for b in bounds if b) + f" ({threshold.severity})"


def value_domain(values: pl.Series, threshold: KpiThreshold, band: pl.DataFrame | None = None) -> tuple[float, float]:
    """The y range of a panel: the values, the threshold lines and the dynamic band, with some room around them."""
    points = [*values.to_list(), *(t for t in (threshold.min, threshold.max) if t is not None)]
    if band is not None:
        points += [*band["lower_bound"].drop_nulls().to_list(), *band["upper_bound"].drop_nulls().to_list()]
    lo, hi = min(points), max(points)
    pad = (hi - lo) * 0.2 or max(abs(hi) * 0.2, 0.05)
    return lo - pad, hi + pad


def breach_bands(threshold: KpiThreshold, lo: float, hi: float) -> pl.DataFrame:
    """The y ranges where the KPI breaks its threshold: below min, above max."""
    rows = []
    if threshold.min is not None:
        rows.append({"band_lo": lo, "band_hi": threshold.min, "threshold": threshold.min,
                     "band": f"below min {threshold.min:g} ({threshold.severity})"})
    if threshold.max is not None:
        rows.append({"band_lo": threshold.max, "band_hi": hi, "threshold": threshold.max,
                     "band": f"above max {threshold.max:g} ({threshold.severity})"})
    return pl.DataFrame(rows)


def dynamic_band(bounds: pl.DataFrame | None, metric: str) -> pl.DataFrame:
    """The metric's allowed range per day (kpi_threshold_check); days without a band drop out."""
    schema = {"as_of_date": pl.String, "lower_bound": pl.Float64, "upper_bound": pl.Float64}
    if bounds is None or not bounds.height:
        return pl.DataFrame(schema=schema)
    return (bounds.filter(pl.col("metric") == metric)
            .filter(pl.col("lower_bound").is_not_null() | pl.col("upper_bound").is_not_null())
            .select(pl.col("as_of_date").cast(pl.String), *(pl.col(c).cast(pl.Float64) for c in schema if c != "as_of_date")))


def band_layers(band: pl.DataFrame, x: alt.X, y_scale: alt.Scale) -> list[alt.Chart]:
    """A dynamic threshold's allowed range day by day: shaded between its bounds, each bound dashed."""
    if not band.height:
        return []
    tooltip = [alt.Tooltip("as_of_date:N", title="as of"), alt.Tooltip("lower_bound:Q", format=",.4g"),
               alt.Tooltip("upper_bound:Q", format=",.4g")]
    layers = [alt.Chart(band).mark_area(color=ALLOWED_GREY, opacity=0.35).encode(
        x=x, y=alt.Y("lower_bound:Q", scale=y_scale, title=None), y2="upper_bound:Q", tooltip=tooltip)]
    for bound in ("lower_bound", "upper_bound"):
        layers.append(alt.Chart(band).mark_line(color=ALERT_RED, strokeDash=[4, 3], strokeWidth=1).encode(
            x=x, y=alt.Y(f"{bound}:Q", scale=y_scale)))
    return layers


def kpi_panel(history: pl.DataFrame, alerts: pl.DataFrame, threshold: KpiThreshold,
              bounds: pl.DataFrame | None = None) -> alt.TopLevelMixin:
    """One KPI over the loaded dates, alerts marked; a fixed threshold's breach zone shaded, a dynamic
    one's allowed band drawn from the bounds in force each day (`bounds`: kpi_threshold_check rows)."""
    metric = threshold.metric
    title = alt.Title(metric, subtitle=threshold_text(threshold), fontSize=12)
    if history.is_empty() or metric not in history.columns:
        return no_data(title, "no KPI row loaded yet" if history.is_empty() else "no such kpi_daily column",
                       width=PANEL_WIDTH, height=PANEL_HEIGHT)
    series = (history.select(pl.col("as_of_date").cast(pl.String), pl.col(metric).cast(pl.Float64).alias("value"))
              .drop_nulls("value"))
    if series.is_empty():
        return no_data(title, "not measured yet", width=PANEL_WIDTH, height=PANEL_HEIGHT)
    band = dynamic_band(bounds, metric) if threshold.kind == "dynamic" else None
    lo, hi = value_domain(series["value"], threshold, band)
    y_scale = alt.Scale(domain=[lo, hi], nice=False, zero=False)
    x = alt.X("as_of_date:T", title=None, scale=alt.Scale(type="utc"), axis=DATE_AXIS)
    if band is not None:
        layers = band_layers(band, x, y_scale)
    else:
        bands = breach_bands(threshold, lo, hi)
        layers = [
            alt.Chart(bands).mark_rect(color=ALERT_RED, opacity=0.12).encode(
                y=alt.Y("band_lo:Q", scale=y_scale, title=None), y2="band_hi:Q", tooltip=["band:N"]),
            alt.Chart(bands).mark_rule(color=ALERT_RED, strokeDash=[4, 3]).encode(y=alt.Y("threshold:Q", scale=y_scale)),
        ]
    layers += [
        alt.Chart(series).mark_line(point=True, color="#1f77b4").encode(
            x=x, y=alt.Y("value:Q", scale=y_scale, title=None),
            tooltip=[alt.Tooltip("as_of_date:N", title="as of"), alt.Tooltip("value:Q", format=",.4g")]),
    ]
    fired = alerts.filter(pl.col("metric") == metric, pl.col("threshold_kind") == threshold.kind) if alerts.height else alerts
    if fired.height:
        fired = fired.select(pl.col("as_of_date").cast(pl.String), "value", "message")
        layers.append(alt.Chart(fired).mark_point(shape="diamond", filled=True, size=90, color=ALERT_RED).encode(
            x=x, y=alt.Y("value:Q", scale=y_scale), tooltip=["message:N"]))
    return alt.layer(*layers).properties(title=title, width=PANEL_WIDTH, height=PANEL_HEIGHT)


def kpi_trend_chart(history: pl.DataFrame, alerts: pl.DataFrame, thresholds: tuple[KpiThreshold, ...],
                    as_of: date, bounds: pl.DataFrame | None = None) -> alt.TopLevelMixin:
    """A small multiple per thresholded KPI (config/scoring.yml kpi_thresholds)."""
    title = alt.Title("KPI trend", subtitle=f"Every loaded day up to {as_of}; shaded: outside the alert threshold; "
                                            "grey band: a trailing threshold's allowed range; diamonds: alerts raised")
    if not thresholds:
        return no_data(title, "no KPI thresholds configured")
    panels = [kpi_panel(history, alerts, t, bounds) for t in thresholds]
    return alt.concat(*panels, columns=4, spacing=24).properties(title=title)


def quarantine_chart(reasons: pl.DataFrame) -> alt.TopLevelMixin:
    """Rows this run quarantined, per source, stacked by reason."""
    title = alt.Title("Quarantined rows", subtitle="Rows this run rejected, per source and reason")
    if reasons.is_empty():
        return no_data(title, "this run quarantined no rows")
    return (
        alt.Chart(reasons).mark_bar()
        .encode(y=alt.Y("source:N", title=None),
                x=alt.X("sum(quarantined_rows):Q", title="rows", axis=alt.Axis(tickMinStep=1, format=",d")),
                color=alt.Color("reason_code:N", title=None, legend=alt.Legend(orient="bottom", columns=2)),
                tooltip=["source:N", "reason_code:N", alt.Tooltip("quarantined_rows:Q", format=",")])
        .properties(title=title, width=WIDTH - 40, height=alt.Step(28))
    )


def clv_missing_reason(kpis: dict) -> str:
    status = kpis.get("clv_status") or ""
    if status and status != "ok":
        return "CLV not scored: " + status.removeprefix("insufficient_data: ")
    return "no customer has a CLV on this date"


def report_charts(data: ReportData, config: ScoringConfig) -> dict[str, alt.TopLevelMixin]:
    """Chart id -> chart, in page order."""
    kpis = data.kpis
    horizon_days = config.clv.horizon_periods * config.clv.period_days
    return {
        "pyramid": pyramid_chart(data.pyramid),
        "rfm-grid": rfm_heatmap(data.rfm_grid),
        "clv": clv_histogram(data.clv_bins, clv_missing_reason(kpis), horizon_days),
        "rater": rater_chart(kpis),
        "complaint-sla": complaint_sla_chart(data.complaint_sla, data.as_of),
        "quarantine": quarantine_chart(data.quarantine_reasons),
        "kpi-trend": kpi_trend_chart(data.kpi_history, data.kpi_alerts, config.kpi_thresholds, data.as_of,
                                     data.kpi_bounds),
    }
