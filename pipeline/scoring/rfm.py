"""RFM analysis with Hughes-style quantile scores. Formulas and tie rule: docs/metrics.md."""
from __future__ import annotations

from datetime import date

import polars as pl


def completed_lines_as_of(order_lines: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """Completed lines of known customers ordered on or before the as-of date (UTC); cancellations,
    returns and guest orders excluded."""
    end = pl.datetime(as_of.year, as_of.month, as_of.day, time_zone="UTC") + pl.duration(days=1)
    return order_lines.filter(
        (pl.col("status") == "completed") & (pl.col("ordered_at") < end) & (pl.col("quantity") > 0)
        & pl.col("customer_id").is_not_null()
    )


def rfm_base(completed: pl.LazyFrame, as_of: date) -> pl.LazyFrame:
    """One row per customer: recency in days, frequency as distinct orders, monetary as net revenue."""
    return completed.group_by("customer_id").agg(
        pl.col("ordered_at").min().alias("first_order_at"),
        pl.col("ordered_at").max().alias("last_order_at"),
        pl.col("order_id").n_unique().cast(pl.Int32).alias("frequency"),
        money_sum("line_amount").alias("monetary_amount"),
    ).with_columns(
        (pl.lit(as_of) - pl.col("last_order_at").dt.date()).dt.total_days().cast(pl.Int32).alias("recency_days")
    )


MONEY_UNITS = 1_000_000  # money is summed in integer millionths of the currency unit


def money_sum(column: str) -> pl.Expr:
    """Sum in integer millionths: float addition order varies with parallel group-bys, integer addition
    does not, so re-runs reproduce the same bytes. Millionths rather than cents, so that sub-cent line
    amounts (a unit price of 0.001, amounts converted from another currency) are not rounded away.

    The total goes back to currency units as a Decimal, whose quotient (six decimals at most) converts
    to the nearest float. A float division would not: Polars divides a column by a scalar as a
    multiplication by its reciprocal, so per-group sums (one per customer) came out one unit in the last
    place low for ~30 % of cent amounts, 0.10 as 0.09999999999999999."""
    units = (pl.col(column) * MONEY_UNITS).round().cast(pl.Int64).sum()
    return (units.cast(pl.Decimal(38, 6)) / MONEY_UNITS).cast(pl.Float64)


def quantile_score(value: pl.Expr, *, bins: int = 5, higher_is_better: bool = True) -> pl.Expr:
    """1..bins by rank: score = 1 + floor(bins * (rank - 1) / n), rank 1 = worst.

    Ties take the lowest rank of their group ('min'), so equal values always share a score and the
    result does not depend on row order.
    """
    rank = (value if higher_is_better else -value).rank("min")
    return (1 + (bins * (rank - 1) / pl.len()).floor()).clip(1, bins).cast(pl.Int16)


def rfm_scores(base: pl.LazyFrame, *, bins: int = 5) -> pl.LazyFrame:
    """Adds r/f/m scores and the RFM cell, e.g. '545'."""
    return base.with_columns(
        quantile_score(pl.col("recency_days"), bins=bins, higher_is_better=False).alias("r_score"),
        quantile_score(pl.col("frequency"), bins=bins).alias("f_score"),
        quantile_score(pl.col("monetary_amount"), bins=bins).alias("m_score"),
    ).with_columns(pl.concat_str("r_score", "f_score", "m_score").alias("rfm_cell"))
