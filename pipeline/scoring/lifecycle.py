"""Churn-risk bands from P(alive) and lifecycle stages. Rules: docs/metrics-lifecycle.md."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

from pipeline.scoring.config import LifecycleConfig

STAGES = ("new", "active", "cooling", "at_risk", "lost", "reactivated")


def churn_risk_band(p_alive: pl.Expr, cutoffs: Sequence[float], labels: Sequence[str]) -> pl.Expr:
    """labels[i] for cutoffs[i-1] <= P(alive) < cutoffs[i]; null P(alive) gives a null band."""
    band = pl.lit(labels[-1])
    for cutoff, label in reversed(list(zip(cutoffs, labels))):
        band = pl.when(p_alive < cutoff).then(pl.lit(label)).otherwise(band)
    return pl.when(p_alive.is_not_null()).then(band)


def days_since(column: str, as_of: date) -> pl.Expr:
    """Whole days from the date column to the as-of date."""
    return (pl.lit(as_of) - pl.col(column)).dt.total_days().cast(pl.Int32)


def purchase_history(completed: pl.LazyFrame, as_of: date, lost_days: int, *,
                     days: pl.LazyFrame | pl.DataFrame | None = None,
                     orders: pl.LazyFrame | pl.DataFrame | None = None) -> pl.LazyFrame:
    """Per customer: first and last purchase day, orders, and the latest return after a long gap.

    A return is a purchase day more than `lost_days` after the previous purchase day (UTC dates).
    When the caller has them already: `days`, rfm.purchase_days(completed); `orders`, each
    customer's `completed_orders` (distinct completed orders: RFM frequency).
    """
    day = pl.col("day")
    same_customer = pl.col("customer_id") == pl.col("customer_id").shift(1)
    if days is None:
        days = (completed.lazy().filter(pl.col("customer_id").is_not_null())
                .select("customer_id", pl.col("ordered_at").dt.date().alias("day")).unique())
    history = (
        days.lazy().select("customer_id", "day")
        .sort("customer_id", "day")  # one row per purchase day, not per line
        .with_columns(pl.when(same_customer).then((day - day.shift(1)).dt.total_days()).alias("gap_days"))
        .group_by("customer_id")
        .agg(
            day.min().alias("first_purchase_date"),
            day.max().alias("last_purchase_date"),
            day.filter(pl.col("gap_days") > lost_days).max().alias("reactivated_on"),
        )
    )
    if orders is None:
        orders = (
            completed.lazy().filter(pl.col("customer_id").is_not_null())
            .group_by("customer_id").agg(pl.col("order_id").n_unique().cast(pl.Int32).alias("completed_orders"))
        )
    return (
        history.join(orders.lazy().select("customer_id", "completed_orders"), on="customer_id", how="left")
        .select("customer_id", "first_purchase_date", "last_purchase_date", "completed_orders", "reactivated_on")
        .with_columns(
            days_since("first_purchase_date", as_of).alias("days_since_first_purchase"),
            days_since("last_purchase_date", as_of).alias("days_since_last_purchase"),
            days_since("reactivated_on", as_of).alias("days_since_reactivation"),
        )
    )


def lifecycle_stage(config: LifecycleConfig) -> pl.Expr:
    """Stage from a purchase_history row; the first rule that matches wins.

    new: first purchase within new_days. reactivated: returned after a gap > lost_days, within
    reactivated_days. Then by days since the last purchase: active (repeat buyers only) within
    active_days, cooling within cooling_days, at_risk within lost_days, lost beyond. One-time buyers
    are never active: past the new window without a second order they are cooling. A repeat buyer
    has at least two distinct completed orders (RFM frequency >= 2).
    """
    since_last = pl.col("days_since_last_purchase")
    return (
        pl.when(pl.col("days_since_first_purchase") <= config.new_days).then(pl.lit("new"))
        .when(pl.col("days_since_reactivation") <= config.reactivated_days).then(pl.lit("reactivated"))
        .when((pl.col("completed_orders") > 1) & (since_last <= config.active_days)).then(pl.lit("active"))
        .when(since_last <= config.cooling_days).then(pl.lit("cooling"))
        .when(since_last <= config.lost_days).then(pl.lit("at_risk"))
        .otherwise(pl.lit("lost"))
    )


def lifecycle_stages(completed: pl.LazyFrame, as_of: date, config: LifecycleConfig, *,
                     days: pl.LazyFrame | pl.DataFrame | None = None,
                     orders: pl.LazyFrame | pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per customer with a purchase: purchase history and `lifecycle_stage` (`days`,
    `orders`: see purchase_history)."""
    return (
        purchase_history(completed, as_of, config.lost_days, days=days, orders=orders)
        .with_columns(lifecycle_stage(config).alias("lifecycle_stage"))
        .sort("customer_id")
        .collect()
    )
