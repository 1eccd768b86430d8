"""The customer pyramid: VIP top 1% by look-back spend, key next 4%, ordinary next 15%, small the rest."""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from pipeline.scoring.rfm import money_sum

TIERS = [("vip", 0.01), ("key", 0.05), ("ordinary", 0.20), ("small", 1.0)]  # cumulative customer shares
INACTIVE = "inactive"
TIER_RANK = {name: i for i, (name, _) in enumerate(TIERS, start=1)} | {INACTIVE: len(TIERS) + 1}


def in_window(as_of: date, window_days: int = 365) -> pl.Expr:
    """The line was ordered in the look-back window ending on the as-of date."""
    return pl.col("ordered_at").dt.date() >= as_of - timedelta(days=window_days - 1)


def window_spend(completed: pl.LazyFrame, as_of: date, window_days: int = 365) -> pl.LazyFrame:
    """Net spend per customer over the look-back window ending on the as-of date."""
    return (
        completed.filter(in_window(as_of, window_days))
        .group_by("customer_id")
        .agg(money_sum("line_amount").alias("window_spend_amount"))
    )


def window_spend_amount(as_of: date, window_days: int = 365) -> pl.Expr:
    """window_spend as a per-customer aggregation over all the customer's lines (0 without lines in
    the window), for rfm.rfm_base(also=...)."""
    return money_sum("line_amount", where=in_window(as_of, window_days)).alias("window_spend_amount")


def tier_cutoffs(n: int) -> list[tuple[str, int]]:
    """Last position (1-based) of each tier among n spenders; ceil so a tier is never empty when n > 0."""
    return [(name, math.ceil(share * n)) for name, share in TIERS]


def _spenders(spend: pl.DataFrame) -> pl.DataFrame:
    """Customers with positive window spend in tier order: spend descending, ties by customer_id."""
    return spend.filter(pl.col("window_spend_amount") > 0).sort(
        ["window_spend_amount", "customer_id"], descending=[True, False]
    )


def assign_tiers(spend: pl.DataFrame, *, cuts: Sequence[tuple | None] | None = None) -> pl.DataFrame:
    """Tier by position in spend order; spend ties across a boundary are split by customer_id.

    `cuts`: tier_cuts of the whole population, when `spend` is a part of it (a shard).
    """
    if cuts is None:
        spenders = _spenders(spend)
        position = pl.int_range(1, pl.len() + 1)
        tier = pl.lit(INACTIVE)
        for name, last in reversed(tier_cutoffs(spenders.height)):
            tier = pl.when(position <= last).then(pl.lit(name)).otherwise(tier)
    else:
        spenders = spend.filter(pl.col("window_spend_amount") > 0)
        amount, customer = pl.col("window_spend_amount"), pl.col("customer_id")
        tier = pl.lit(TIERS[-1][0])
        for name, (last_amount, last_customer) in reversed([(n, cut) for (n, _), cut in zip(TIERS, cuts) if cut]):
            up_to_last = (amount > last_amount) | ((amount == last_amount) & (customer <= last_customer))
            tier = pl.when(up_to_last).then(pl.lit(name)).otherwise(tier)
    tiered = spenders.with_columns(tier.alias("pyramid_tier"))
    idle = spend.filter(pl.col("window_spend_amount") <= 0).with_columns(pl.lit(INACTIVE).alias("pyramid_tier"))
    return pl.concat([tiered, idle])


def tier_cuts(spend: pl.DataFrame) -> list[tuple | None]:
    """assign_tiers over this population as cut points: for each tier but the last, its last
    spender's (window spend, customer_id); None for a tier without one. A customer is in the first
    tier whose cut it does not come after in tier order, otherwise in the last, as by position."""
    spenders = _spenders(spend).select("window_spend_amount", "customer_id")
    return [spenders.row(last - 1) if last else None for _, last in tier_cutoffs(spenders.height)[:-1]]


def pyramid_summary(tiers: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """One row per tier: customers and share of look-back revenue."""
    total = tiers.select(money_sum("window_spend_amount")).item() or 0.0
    counts = tiers.group_by("pyramid_tier").agg(pl.len().alias("customers"), money_sum("window_spend_amount").alias("revenue_amount"))
    every = pl.DataFrame({"pyramid_tier": list(TIER_RANK), "tier_rank": list(TIER_RANK.values())},
                         schema={"pyramid_tier": pl.String, "tier_rank": pl.Int16})
    return (
        every.join(counts, on="pyramid_tier", how="left")
        .with_columns(
            pl.lit(as_of).alias("as_of_date"),
            pl.col("customers").fill_null(0).cast(pl.Int64),
            pl.col("revenue_amount").fill_null(0.0),
        )
        .with_columns((pl.col("revenue_amount") / total if total else pl.lit(0.0)).alias("revenue_share"))
        .select("as_of_date", "pyramid_tier", "tier_rank", "customers", "revenue_amount", "revenue_share")
        .sort("tier_rank")
    )
