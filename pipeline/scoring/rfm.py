"""RFM analysis with Hughes-style quantile scores. Formulas and tie rule: docs/metrics.md."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
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


def rfm_base(completed: pl.LazyFrame, as_of: date, *, also: Sequence[pl.Expr] = ()) -> pl.LazyFrame:
    """One row per customer: recency in days, frequency as distinct orders, monetary as net revenue.
    `also`: more per-customer aggregations, computed in the same pass over the lines."""
    return completed.group_by("customer_id").agg(
        pl.col("ordered_at").min().alias("first_order_at"),
        pl.col("ordered_at").max().alias("last_order_at"),
        pl.col("order_id").n_unique().cast(pl.Int32).alias("frequency"),
        money_sum("line_amount").alias("monetary_amount"),
        *also,
    ).with_columns(
        (pl.lit(as_of) - pl.col("last_order_at").dt.date()).dt.total_days().cast(pl.Int32).alias("recency_days")
    )


MONEY_UNITS = 1_000_000  # money is summed in integer millionths of the currency unit


def money_units(column: str) -> pl.Expr:
    """The amount in whole millionths (Int64), the unit money is summed in."""
    return (pl.col(column) * MONEY_UNITS).round().cast(pl.Int64)


def units_to_money(units: pl.Expr) -> pl.Expr:
    """A total in millionths back to currency units, through a Decimal (see money_sum)."""
    return (units.cast(pl.Decimal(38, 6)) / MONEY_UNITS).cast(pl.Float64)


def money_sum(column: str, where: pl.Expr | None = None) -> pl.Expr:
    """Sum in integer millionths: float addition order varies with parallel group-bys, integer addition
    does not, so re-runs reproduce the same bytes. Millionths rather than cents, so that sub-cent line
    amounts (a unit price of 0.001, amounts converted from another currency) are not rounded away.

    The total goes back to currency units as a Decimal, whose quotient (six decimals at most) converts
    to the nearest float. A float division would not: Polars divides a column by a scalar as a
    multiplication by its reciprocal, so per-group sums (one per customer) came out one unit in the last
    place low for ~30 % of cent amounts, 0.10 as 0.09999999999999999. `where`: only the rows where it
    holds (0 when none does)."""
    units = money_units(column) if where is None else money_units(column).filter(where)
    return units_to_money(units.sum())


def purchase_days(completed: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    """One row per known customer and UTC day with a completed purchase: `day` and the day's spend in
    whole millionths (`amount_units`). BG/NBD counts purchase days, lifecycle gaps are between them
    and retention asks for any in a period, so those scores read these rows, not the order lines.

    Takes completed lines (completed_lines_as_of) or purchase days, returned as they are: a caller
    with several such scores builds them once (10M lines become ~2.5M days at M)."""
    lazy = completed.lazy()
    if "amount_units" in lazy.collect_schema().names():
        return lazy
    return (
        lazy.filter(pl.col("customer_id").is_not_null())
        .group_by("customer_id", pl.col("ordered_at").dt.date().alias("day"))
        .agg(money_units("line_amount").sum().alias("amount_units"))
    )


def quantile_score(value: pl.Expr, *, bins: int = 5, higher_is_better: bool = True) -> pl.Expr:
    """1..bins by rank: score = 1 + floor(bins * (rank - 1) / n), rank 1 = worst.

    Ties take the lowest rank of their group ('min'), so equal values always share a score and the
    result does not depend on row order.
    """
    rank = (value if higher_is_better else -value).rank("min")
    return (1 + (bins * (rank - 1) / pl.len()).floor()).clip(1, bins).cast(pl.Int16)


def quantile_cuts(values: pl.Series, *, bins: int = 5, higher_is_better: bool = True) -> list[float | None]:
    """quantile_score over this population as cut points: entry s-2 is the smallest value (the largest,
    when lower is better) that scores s or more, for s = 2..bins; None when none does.

    score_by_cuts with them gives any value of the population its quantile_score without the rest
    of the population: how a shard of the customers is scored as the whole would score it.
    """
    signed = values if higher_is_better else -values  # as quantile_score ranks them
    scored = pl.DataFrame({"v": signed}).with_columns(quantile_score(pl.col("v"), bins=bins).alias("s")).drop_nulls()
    lowest = dict(scored.group_by("s").agg(pl.col("v").min()).iter_rows())
    cuts, running = [], None
    for score in range(bins, 1, -1):  # scores rise with the value: the smallest scoring s or more
        if score in lowest:
            running = lowest[score] if running is None else min(running, lowest[score])
        cuts.append(None if running is None else (running if higher_is_better else -running))
    return cuts[::-1]


def score_by_cuts(value: pl.Expr, cuts: Sequence[float | None], *, higher_is_better: bool = True) -> pl.Expr:
    """The quantile score of a value from its population's quantile_cuts; null stays null."""
    steps = [(value >= cut if higher_is_better else value <= cut).cast(pl.Int16) for cut in cuts if cut is not None]
    return pl.when(value.is_not_null()).then(1 + pl.sum_horizontal(steps) if steps else pl.lit(1)).cast(pl.Int16)


def scores(column: str, *, bins: int, higher_is_better: bool = True, cuts: Sequence[float | None] | None = None) -> pl.Expr:
    """quantile_score of the column over the frame's rows, or, given the population's cuts, by them."""
    if cuts is None:
        return quantile_score(pl.col(column), bins=bins, higher_is_better=higher_is_better)
    return score_by_cuts(pl.col(column), cuts, higher_is_better=higher_is_better)


def rfm_scores(base: pl.LazyFrame, *, bins: int = 5, cuts: Mapping[str, Sequence] | None = None) -> pl.LazyFrame:
    """Adds r/f/m scores and the RFM cell, e.g. '545'. `cuts`: quantile_cuts of the whole population
    by score column, when `base` is a part of it (a shard)."""
    cut = (lambda name: None) if cuts is None else cuts.__getitem__
    return base.with_columns(
        scores("recency_days", bins=bins, higher_is_better=False, cuts=cut("r_score")).alias("r_score"),
        scores("frequency", bins=bins, cuts=cut("f_score")).alias("f_score"),
        scores("monetary_amount", bins=bins, cuts=cut("m_score")).alias("m_score"),
    ).with_columns(pl.concat_str("r_score", "f_score", "m_score").alias("rfm_cell"))
