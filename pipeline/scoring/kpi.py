"""Entry points of the daily scores: one row per customer, one row of company KPIs, and KPI alerts.

Wiring, without fitting the CLV models twice:

    clv = clv_scores(completed_lines_as_of(order_lines, as_of), as_of, config.clv)   # clv.fits -> model_quality
    customers = customer_scores(order_lines, surveys, complaints, as_of, config, clv=clv)
    kpis = company_kpis(order_lines, surveys, survey_items, complaints, as_of, config, customers=customers)
    alerts = kpi_alerts(kpis, config.kpi_thresholds, kpi_history)   # pipeline/scoring/alerts.py
    categories = category_margins(purchases_as_of(order_lines, as_of), as_of)

company_kpis = assemble_kpis(company_parts(...), customers): the parts drawn from the history and
those drawn from the customer rows, which sharded scoring (shards.py) computes in different tasks.
Every input may be None or a column-less frame (nothing staged yet): it is read as empty.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date

import polars as pl

from pipeline.scoring.complaints import COMPLAINT_SCHEMA, company_complaints, customer_complaints
from pipeline.schemas import RATER_DIMENSIONS, UTC_TS
from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.guards import OK, ClvScores, clv_scores, insufficient
from pipeline.scoring.lifecycle import STAGES, churn_risk_band, lifecycle_stages
from pipeline.scoring.loyalty import (
    categories_bought,
    category_margins,
    purchases_as_of,
    company_margin,
    repeat_purchase_rate,
    retention,
    with_loyalty_index,
)
from pipeline.scoring.pyramid import TIERS, assign_tiers, pyramid_summary, window_spend_amount
from pipeline.scoring.rfm import completed_lines_as_of, money_sum, purchase_days, rfm_base, rfm_scores
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
    *, clv: ClvScores | None = None, days: pl.DataFrame | None = None, cuts: Mapping[str, Sequence] | None = None,
) -> pl.DataFrame:
    """One row per customer with a completed purchase by the as-of date, every score or its status.

    `clv` takes a clv_scores result computed beforehand (its fits go to model_quality), `days` the
    rfm.purchase_days of the completed lines. `cuts`: when the lines are a part of the customers (a
    shard), the cut points of the population-wide scores over all of them (shards.population_cuts).
    """
    lines = as_input(order_lines, ORDER_LINE_SCHEMA)
    completed = completed_lines_as_of(lines, as_of)  # guests are left out
    # One pass over the lines for RFM, window spend and category breadth.
    base = rfm_base(completed, as_of, also=[window_spend_amount(as_of, config.pyramid_window_days), categories_bought()])
    scored = add_rfm3_scores(add_rfm_segments(rfm_scores(base, cuts=cuts)), cuts=cuts).collect()
    tiers = assign_tiers(scored.select("customer_id", "window_spend_amount"),
                         cuts=None if cuts is None else cuts["pyramid_tier"]).select("customer_id", "pyramid_tier")
    days = purchase_days(completed).collect() if days is None else days
    orders = scored.select("customer_id", pl.col("frequency").alias("completed_orders"))
    stages = lifecycle_stages(completed, as_of, config.lifecycle, days=days, orders=orders).select(
        "customer_id", pl.col("days_since_first_purchase").alias("tenure_days"), "lifecycle_stage", "reactivated_on"
    )
    clv = clv or clv_scores(days, as_of, config.clv)
    service = customer_service(as_input(surveys, RESPONSE_SCHEMA), as_of, config.service)
    tickets = customer_complaints(as_input(complaints, COMPLAINT_SCHEMA), lines, as_of, config.complaints)
    joined = scored
    for part in (tiers, stages, clv.customers, service, tickets):
        joined = joined.join(part, on="customer_id", how="left")
    lc = config.lifecycle
    return (
        with_loyalty_index(joined, config.loyalty, tenure_cuts=None if cuts is None else cuts["tenure_score"])
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
    days: pl.DataFrame | None = None, categories: pl.DataFrame | None = None, service: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One row of company KPIs as of the date. Pass `customers` (customer_scores), and the history
    parts' inputs (see company_parts), to avoid recomputing them."""
    if customers is None:
        customers = customer_scores(order_lines, surveys, complaints, as_of, config)
    parts = company_parts(order_lines, surveys, survey_items, complaints, as_of, config, days=days,
                          categories=categories, service=service)
    return assemble_kpis(parts, customers, as_of, config)


def company_parts(
    order_lines: Frame, surveys: Frame, survey_items: Frame, complaints: Frame, as_of: date,
    config: ScoringConfig = ScoringConfig(), *, days: pl.DataFrame | None = None,
    categories: pl.DataFrame | None = None, service: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """The company KPIs drawn from the history rather than from the customer rows, as one-row frames
    by part (KPI_PARTS). `days` (rfm.purchase_days of the completed lines), `categories`
    (loyalty.category_margins) and `service` (service.company_service) are used when given. Every
    part is an aggregate, so lazy scans of a large history are streamed."""
    lines = as_input(order_lines, ORDER_LINE_SCHEMA)
    purchases = purchases_as_of(lines, as_of)
    return {
        "sales": purchases.select(
            pl.col("order_id").n_unique().cast(pl.Int64).alias("completed_orders"),
            money_sum("line_amount").alias("revenue_amount"),
        ).collect(),
        "retention": retention(completed_lines_as_of(lines, as_of) if days is None else days, as_of,
                               config.loyalty.retention_period_days),
        "margin": company_margin(category_margins(purchases, as_of) if categories is None else categories),
        "service": service if service is not None else company_service(
            as_input(surveys, RESPONSE_SCHEMA), as_input(survey_items, ITEM_SCHEMA), as_of, config.service),
        "complaints": company_complaints(as_input(complaints, COMPLAINT_SCHEMA), lines, as_of, config.complaints),
    }


# kpi_daily's column groups, in order: "customers" and "pyramid" come from the customer rows, the
# others from the history (company_parts).
KPI_PARTS = ("sales", "customers", "retention", "pyramid", "margin", "service", "complaints")


def assemble_kpis(parts: dict[str, pl.DataFrame], customers: pl.DataFrame, as_of: date,
                  config: ScoringConfig = ScoringConfig()) -> pl.DataFrame:
    """The kpi_daily row: the history parts (company_parts) and the figures of the customer rows."""
    parts = parts | {"customers": customer_aggregates(customers, config), "pyramid": pyramid_shares(customers, as_of)}
    return pl.concat([pl.DataFrame({"as_of_date": [as_of]}), *(parts[name] for name in KPI_PARTS)], how="horizontal")
