"""Complaint measures per customer and for the company. Rules: docs/metrics-complaints.md."""
from __future__ import annotations

from datetime import date

import polars as pl

from pipeline.schemas import UTC_TS
from pipeline.scoring.config import ComplaintConfig
from pipeline.scoring.guards import end_of, observed_by, status

HOUR_US = 3_600_000_000
# Input contract of the staging layer: one row per ticket.
COMPLAINT_SCHEMA = {
    "ticket_id": pl.String, "customer_id": pl.String, "order_id": pl.String, "opened_at": UTC_TS,
    "first_response_at": UTC_TS, "resolved_at": UTC_TS, "category": pl.String, "severity": pl.String,
    "channel": pl.String, "status": pl.String, "is_reopened": pl.Boolean, "is_timely_response": pl.Boolean,
    "is_disputed": pl.Boolean,
}


def _hours(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later - earlier).dt.total_microseconds() / HOUR_US


def tickets_as_of(complaints: pl.LazyFrame | pl.DataFrame, as_of: date, config: ComplaintConfig) -> pl.LazyFrame:
    """Tickets opened by the as-of date, seen as they stood at its end.

    Responses and resolutions after the as-of date have not happened yet, so a ticket resolved
    later is open. Otherwise `status` decides; without one, open = no resolution time.
    Adds is_open, first_response_hours, resolution_hours, sla_hours and sla_breached.
    """
    end = end_of(as_of)
    tickets = complaints.lazy().filter(observed_by("opened_at", as_of))
    resolved_later = (pl.col("resolved_at") >= end).fill_null(False)
    stated_open = (pl.col("status") == "open").fill_null(pl.col("resolved_at").is_null())
    return (
        tickets.with_columns((resolved_later | stated_open).alias("is_open"))
        .with_columns(
            pl.when(observed_by(c, as_of)).then(pl.col(c)).alias(c) for c in ("first_response_at", "resolved_at")
        )
        .with_columns(
            _hours(pl.col("first_response_at"), pl.col("opened_at")).alias("first_response_hours"),
            _hours(pl.col("resolved_at"), pl.col("opened_at")).alias("resolution_hours"),
            _hours(end, pl.col("opened_at")).alias("age_hours"),
            pl.col("severity").replace_strict(dict(config.sla_hours), default=config.default_sla_hours,
                                              return_dtype=pl.Float64).alias("sla_hours"),
        )
        .with_columns(sla_breached().alias("sla_breached"))
    )


def sla_breached() -> pl.Expr:
    """Resolved: resolution time > SLA. Open: age > SLA (already breached), else undecided (null)."""
    return (
        pl.when(pl.col("resolution_hours").is_not_null()).then(pl.col("resolution_hours") > pl.col("sla_hours"))
        .when(pl.col("is_open") & (pl.col("age_hours") > pl.col("sla_hours"))).then(True)
    )


def share(flag: pl.Expr) -> pl.Expr:
    """Share of true among the known (non-null) flags; null when none is known."""
    return flag.cast(pl.Float64).mean()


def complaint_measures() -> list[pl.Expr]:
    """Aggregations shared by the per-customer and company frames."""
    return [
        pl.len().cast(pl.Int64).alias("complaints"),
        pl.col("is_open").sum().cast(pl.Int64).alias("open_complaints"),
        pl.col("first_response_hours").median().alias("median_first_response_hours"),
        pl.col("resolution_hours").median().alias("median_resolution_hours"),
        share(pl.col("sla_breached")).alias("sla_breach_share"),
        share(pl.col("is_reopened")).alias("reopen_rate"),
    ]


def complaint_times_status(complaints: pl.Expr, median_first_response: pl.Expr, median_resolution: pl.Expr) -> pl.Expr:
    """Guard of the time measures: they need tickets, and tickets that were answered or resolved."""
    return (
        pl.when(complaints.fill_null(0) == 0).then(status(pl.lit(False), "no complaints"))
        .otherwise(status(median_first_response.is_not_null() | median_resolution.is_not_null(),
                          "no answered or resolved complaints"))
    )


def _with_rate_and_status(frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame | pl.DataFrame:
    return frame.with_columns(
        pl.when(pl.col("orders_placed") > 0).then(1000 * pl.col("complaints").fill_null(0) / pl.col("orders_placed"))
        .alias("complaints_per_1000_orders"),
        complaint_times_status(pl.col("complaints"), pl.col("median_first_response_hours"),
                               pl.col("median_resolution_hours")).alias("complaint_times_status"),
    )


def orders_placed(order_lines: pl.LazyFrame | pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """Distinct orders per customer placed by the as-of date, whatever their status (a cancelled order
    can be complained about). Guest orders keep a null customer_id."""
    return (
        order_lines.lazy().filter(observed_by("ordered_at", as_of))
        .group_by("customer_id").agg(pl.col("order_id").n_unique().cast(pl.Int64).alias("orders_placed"))
    )


def customer_complaints(
    complaints: pl.LazyFrame | pl.DataFrame, order_lines: pl.LazyFrame | pl.DataFrame, as_of: date, config: ComplaintConfig
) -> pl.DataFrame:
    """One row per customer with an order or a complaint; counts are 0 without complaints."""
    per_customer = (
        tickets_as_of(complaints, as_of, config).filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id").agg(complaint_measures())
    )
    orders = orders_placed(order_lines, as_of).filter(pl.col("customer_id").is_not_null())
    joined = orders.join(per_customer, on="customer_id", how="full", coalesce=True).with_columns(
        pl.col("orders_placed", "complaints", "open_complaints").fill_null(0)
    )
    return _with_rate_and_status(joined).sort("customer_id").collect()


def company_complaints(
    complaints: pl.LazyFrame | pl.DataFrame, order_lines: pl.LazyFrame | pl.DataFrame, as_of: date, config: ComplaintConfig
) -> pl.DataFrame:
    """One row over all tickets and orders (anonymous and guest ones too), with the CFPB-style shares."""
    measures = tickets_as_of(complaints, as_of, config).select(
        *complaint_measures(),
        share(pl.col("is_timely_response")).alias("timely_response_share"),
        share(pl.col("is_disputed")).alias("dispute_share"),
    )
    orders = orders_placed(order_lines, as_of).select(pl.col("orders_placed").sum().cast(pl.Int64))
    return _with_rate_and_status(pl.concat([measures, orders], how="horizontal")).collect()
