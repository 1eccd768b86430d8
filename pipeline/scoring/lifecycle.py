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


def _days_since(column: str, as_of: date) -> pl.Expr:
    return (pl.lit(as_of) - pl.col(column)).dt.total_days().cast(pl.Int32)


def purchase_history(completed: pl.LazyFrame, as_of: date, lost_days: int) -> pl.LazyFrame:
    """Per customer: first and last purchase day, orders, and the latest return after a long gap.

    A return is a purchase day more than `lost_days` after the previous purchase day (UTC dates).
    """
    lines = (
        completed.filter(pl.col("customer_id").is_not_null())
        .select("customer_id", "order_id", pl.col("ordered_at").dt.date().alias("day"))
        .sort("customer_id", "day")
        # Lines of one day have gap 0, so line-to-line gaps hold every gap between purchase days.
        .with_columns((pl.col("day") - pl.col("day").shift(1).over("customer_id")).dt.total_days().alias("gap_days"))
    )
    return (
        lines.group_by("customer_id")
        .agg(
            pl.col("day").min().alias("first_purchase_date"),
            pl.col("day").max().alias("last_purchase_date"),
            pl.col("order_id").n_unique().cast(pl.Int32).alias("completed_orders"),
            pl.col("day").filter(pl.col("gap_days") > lost_days).max().alias("reactivated_on"),
        )
        .with_columns(
            _days_since("first_purchase_date", as_of).alias("days_since_first_purchase"),
            _days_since("last_purchase_date", as_of).alias("days_since_last_purchase"),
            _days_since("reactivated_on", as_of).alias("days_since_reactivation"),
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


def lifecycle_stages(completed: pl.LazyFrame, as_of: date, config: LifecycleConfig) -> pl.DataFrame:
    """One row per customer with a purchase: purchase history and `lifecycle_stage`."""
    return (
        purchase_history(completed, as_of, config.lost_days)
        .with_columns(lifecycle_stage(config).alias("lifecycle_stage"))
        .sort("customer_id")
        .collect()
    )
