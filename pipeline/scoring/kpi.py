"""Entry points of the daily scores: one row per customer, one row of company KPIs, and KPI alerts.

Wiring, without fitting the CLV models twice:

    clv = clv_scores(completed_lines_as_of(order_lines, as_of), as_of, config.clv)   # clv.fits -> model_quality
    customers = customer_scores(order_lines, surveys, complaints, as_of, config, clv=clv)
    kpis = company_kpis(order_lines, surveys, survey_items, complaints, as_of, config, customers=customers)
    alerts = kpi_alerts(kpis, config.kpi_thresholds)
    categories = category_margins(purchases_as_of(order_lines, as_of), as_of)

Every input may be None or a column-less frame (nothing staged yet): it is read as empty.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date

import polars as pl

from pipeline.scoring.complaints import COMPLAINT_SCHEMA, company_complaints, customer_complaints
from pipeline.schemas import RATER_DIMENSIONS, UTC_TS
from pipeline.scoring.config import KpiThreshold, ScoringConfig
from pipeline.scoring.guards import OK, ClvScores, clv_scores, insufficient
from pipeline.scoring.lifecycle import STAGES, churn_risk_band, lifecycle_stages
from pipeline.scoring.loyalty import (
    category_breadth,
    category_margins,
    purchases_as_of,
    company_margin,
    repeat_purchase_rate,
    retention,
    with_loyalty_index,
)
from pipeline.scoring.pyramid import TIERS, assign_tiers, pyramid_summary, window_spend
from pipeline.scoring.rfm import completed_lines_as_of, money_sum, rfm_base, rfm_scores
from pipeline.scoring.segments import add_rfm3_scores, add_rfm_segments
from pipeline.scoring.service import ITEM_SCHEMA, RESPONSE_SCHEMA, company_service, customer_service, service_status

Frame = pl.LazyFrame | pl.DataFrame | None

# Input contract of the staging layer: one row per order line.
ORDER_LINE_SCHEMA = {
    "customer_id": pl.String, "order_id": pl.String, "line_number": pl.Int32, "ordered_at": UTC_TS,
    "product_id": pl.String, "category": pl.String, "quantity": pl.Int32, "unit_price_amount": pl.Float64,
    "unit_cost_amount": pl.Float64, "line_amount": pl.Float64, "line_cost_amount": pl.Float64, "status": pl.String,
    "is_cancelled": pl.Boolean, "is_returned": pl.Boolean,
}


def as_input(frame: Frame, schema: dict) -> pl.LazyFrame:
    """The frame as a LazyFrame with every contract column: None or a frame without columns (nothing
    staged yet) is an empty frame, and a contract column the source lacks is null (not measured)."""
    if frame is None:
        return pl.LazyFrame(schema=schema)
    lazy = frame.lazy()
    present = set(lazy.collect_schema().names())
    if not present:
        return pl.LazyFrame(schema=schema)
    return lazy.with_columns(pl.lit(None, dtype).alias(name) for name, dtype in schema.items() if name not in present)


def customer_scores(
    order_lines: Frame, surveys: Frame, complaints: Frame, as_of: date, config: ScoringConfig = ScoringConfig(),
    *, clv: ClvScores | None = None,
) -> pl.DataFrame:
    """One row per customer with a completed purchase by the as-of date, every score or its status.

    `clv` takes a clv_scores result computed beforehand (its fits go to model_quality).
    """
    lines = as_input(order_lines, ORDER_LINE_SCHEMA)
    completed = completed_lines_as_of(lines, as_of)  # guests are left out
    rfm = add_rfm3_scores(add_rfm_segments(rfm_scores(rfm_base(completed, as_of))))
    spend = window_spend(completed, as_of, config.pyramid_window_days)
    scored = (
        rfm.join(spend, on="customer_id", how="left")
        .join(category_breadth(completed), on="customer_id", how="left")
        .with_columns(pl.col("window_spend_amount").fill_null(0.0))
        .collect()
    )
    tiers = assign_tiers(scored.select("customer_id", "window_spend_amount")).select("customer_id", "pyramid_tier")
    stages = lifecycle_stages(completed, as_of, config.lifecycle).select(
        "customer_id", pl.col("days_since_first_purchase").alias("tenure_days"), "lifecycle_stage", "reactivated_on"
    )
    clv = clv or clv_scores(completed, as_of, config.clv)
    service = customer_service(as_input(surveys, RESPONSE_SCHEMA), as_of, config.service)
    tickets = customer_complaints(as_input(complaints, COMPLAINT_SCHEMA), lines, as_of, config.complaints)
    joined = scored
    for part in (tiers, stages, clv.customers, service, tickets):
        joined = joined.join(part, on="customer_id", how="left")
    lc = config.lifecycle
    return (
        with_loyalty_index(joined, config.loyalty)
        .with_columns(
            pl.lit(as_of).alias("as_of_date"),
            churn_risk_band(pl.col("p_alive"), lc.churn_band_cutoffs, lc.churn_band_labels).alias("churn_risk_band"),
            pl.col("survey_responses").fill_null(0),
            service_status(pl.col("survey_responses")).alias("service_status"),
        )
        .select(CUSTOMER_COLUMNS)
        .sort("customer_id")
    )


CUSTOMER_COLUMNS = [
    "as_of_date", "customer_id",
    # RFM, segments, pyramid
    "first_order_at", "last_order_at", "recency_days", "frequency", "monetary_amount",
    "r_score", "f_score", "m_score", "rfm_cell", "rfm_segment", "r3_score", "f3_score", "m3_score", "rfm3_cell",
    "window_spend_amount", "pyramid_tier",
    # lifecycle, churn, CLV
    "tenure_days", "lifecycle_stage", "reactivated_on",
    "p_alive", "churn_risk_band", "bgnbd_status", "expected_purchases", "expected_purchases_status",
    "expected_average_value", "expected_value_status", "clv_amount", "clv_status",
    # loyalty
    "category_breadth", "tenure_score", "loyalty_behavioural", "loyalty_attitudinal", "loyalty_index", "loyalty_basis",
    # service
    "survey_responses",
    *[f"{m}_{d}" for d in RATER_DIMENSIONS
      for m in ("perception", "expectation", "gap")],
    "expectation_source", "rater_gap_index", "rater_perception_index", "recommend_score", "satisfaction_score",
    "service_status",
    # complaints
    "orders_placed", "complaints", "open_complaints", "median_first_response_hours", "median_resolution_hours",
    "sla_breach_share", "reopen_rate", "complaints_per_1000_orders", "complaint_times_status",
]


def customer_aggregates(customers: pl.DataFrame, config: ScoringConfig) -> pl.DataFrame:
    """One row of company figures drawn from the per-customer scores."""
    stage_counts = [(pl.col("lifecycle_stage") == s).sum().cast(pl.Int64).alias(f"customers_{s}") for s in STAGES]
    band_counts = [
        (pl.col("churn_risk_band") == b).sum().cast(pl.Int64).alias(f"customers_churn_{b}")
        for b in config.lifecycle.churn_band_labels
    ]
    return customers.select(
        pl.len().cast(pl.Int64).alias("customers"),
        (pl.col("frequency") >= 2).sum().cast(pl.Int64).alias("repeat_customers"),
        repeat_purchase_rate(pl.col("frequency")).alias("repeat_purchase_rate"),
        pl.col("tenure_days").mean().alias("mean_tenure_days"),
        pl.col("category_breadth").mean().alias("mean_category_breadth"),
        pl.col("loyalty_index").mean().alias("mean_loyalty_index"),
        *stage_counts,
        *band_counts,
        pl.col("p_alive").mean().alias("mean_p_alive"),
        pl.col("clv_amount").count().cast(pl.Int64).alias("clv_customers"),
        # sum() of an all-null column is 0; a total without any CLV must stay null.
        pl.when(pl.col("clv_amount").count() > 0).then(pl.col("clv_amount").sum()).alias("clv_total_amount"),
        clv_company_status().alias("clv_status"),
    )


def clv_company_status() -> pl.Expr:
    """'ok' when every customer has a CLV, else the commonest reason one does not (`clv_customers` says how many do)."""
    missing = pl.col("clv_status").filter(pl.col("clv_status") != OK)
    return (
        pl.when(pl.len() == 0).then(pl.lit(insufficient("no customers")))
        .when(missing.len() == 0).then(pl.lit(OK))
        .otherwise(missing.mode().sort().first())
    )


def pyramid_shares(customers: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """One row: each pyramid tier's share of look-back revenue."""
    summary = pyramid_summary(customers.select("customer_id", "window_spend_amount", "pyramid_tier"), as_of)
    share = dict(zip(summary["pyramid_tier"], summary["revenue_share"]))
    return pl.DataFrame({f"revenue_share_{tier}": [share.get(tier, 0.0)] for tier, _ in TIERS},
                        schema={f"revenue_share_{tier}": pl.Float64 for tier, _ in TIERS})


def company_kpis(
    order_lines: Frame, surveys: Frame, survey_items: Frame, complaints: Frame, as_of: date,
    config: ScoringConfig = ScoringConfig(), *, customers: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row of company KPIs as of the date. Pass `customers` (customer_scores) to avoid recomputing it."""
    lines = as_input(order_lines, ORDER_LINE_SCHEMA)
    if customers is None:
        customers = customer_scores(order_lines, surveys, complaints, as_of, config)
    purchases = purchases_as_of(lines, as_of)
    sales = purchases.select(
        pl.col("order_id").n_unique().cast(pl.Int64).alias("completed_orders"),
        money_sum("line_amount").alias("revenue_amount"),
    ).collect()
    parts = [
        pl.DataFrame({"as_of_date": [as_of]}),
        sales,
        customer_aggregates(customers, config),
        retention(completed_lines_as_of(lines, as_of), as_of, config.loyalty.retention_period_days),
        pyramid_shares(customers, as_of),
        company_margin(category_margins(purchases, as_of)),
        company_service(as_input(surveys, RESPONSE_SCHEMA), as_input(survey_items, ITEM_SCHEMA), as_of, config.service),
        company_complaints(as_input(complaints, COMPLAINT_SCHEMA), lines, as_of, config.complaints),
    ]
    return pl.concat(parts, how="horizontal")


ALERT_SCHEMA = {
    "as_of_date": pl.Date, "metric": pl.String, "value": pl.Float64, "threshold": pl.Float64, "bound": pl.String,
    "severity": pl.String, "message": pl.String,
}


def kpi_alerts(kpis: pl.DataFrame, thresholds: Sequence[KpiThreshold]) -> pl.DataFrame:
    """One alert row per threshold the one-row KPI frame breaks.

    A null (or NaN) value raises no alert: a missing figure is reported by its status column, not as
    a breach. A threshold on a metric the frame lacks is a configuration error and raises KeyError.
    """
    if kpis.height != 1:
        raise ValueError(f"kpi_alerts expects one row of KPIs, got {kpis.height}")
    row = kpis.row(0, named=True)
    as_of = row.get("as_of_date")
    alerts = []
    for t in thresholds:
        if t.metric not in row:
            raise KeyError(f"KPI threshold on unknown metric {t.metric!r}")
        value = row[t.metric]
        if value is None or math.isnan(value):
            continue
        if t.min is not None and value < t.min:
            alerts.append((as_of, t.metric, float(value), t.min, "min", t.severity,
                           f"{t.metric} = {value:.4g} is below the minimum {t.min:g}"))
        if t.max is not None and value > t.max:
            alerts.append((as_of, t.metric, float(value), t.max, "max", t.severity,
                           f"{t.metric} = {value:.4g} is above the maximum {t.max:g}"))
    return pl.DataFrame(alerts, schema=ALERT_SCHEMA, orient="row")
