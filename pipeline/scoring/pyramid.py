"""The customer pyramid: VIP top 1% by look-back spend, key next 4%, ordinary next 15%, small the rest."""
from __future__ import annotations

import math
from datetime import date, timedelta

import polars as pl

from pipeline.scoring.rfm import money_sum

TIERS = [("vip", 0.01), ("key", 0.05), ("ordinary", 0.20), ("small", 1.0)]  # cumulative customer shares
INACTIVE = "inactive"
TIER_RANK = {name: i for i, (name, _) in enumerate(TIERS, start=1)} | {INACTIVE: len(TIERS) + 1}


def window_spend(completed: pl.LazyFrame, as_of: date, window_days: int = 365) -> pl.LazyFrame:
    """Net spend per customer over the look-back window ending on the as-of date."""
    start = as_of - timedelta(days=window_days - 1)
    return (
        completed.filter(pl.col("ordered_at").dt.date() >= start)
        .group_by("customer_id")
        .agg(money_sum("line_amount").alias("window_spend_amount"))
    )


def tier_cutoffs(n: int) -> list[tuple[str, int]]:
    """Last position (1-based) of each tier among n spenders; ceil so a tier is never empty when n > 0."""
    return [(name, math.ceil(share * n)) for name, share in TIERS]


def assign_tiers(spend: pl.DataFrame) -> pl.DataFrame:
    """Tier by position in spend order; spend ties across a boundary are split by customer_id."""
    spenders = spend.filter(pl.col("window_spend_amount") > 0).sort(
        ["window_spend_amount", "customer_id"], descending=[True, False]
    )
    position = pl.int_range(1, pl.len() + 1)
    tier = pl.lit(INACTIVE)
    for name, last in reversed(tier_cutoffs(spenders.height)):
        tier = pl.when(position <= last).then(pl.lit(name)).otherwise(tier)
    tiered = spenders.with_columns(tier.alias("pyramid_tier"))
    idle = spend.filter(pl.col("window_spend_amount") <= 0).with_columns(pl.lit(INACTIVE).alias("pyramid_tier"))
    return pl.concat([tiered, idle])


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
