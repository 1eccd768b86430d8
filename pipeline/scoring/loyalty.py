"""Loyalty and value: repeat purchase, retention, tenure, category breadth, the loyalty index, and
gross margin per category. Formulas and weights: docs/metrics-loyalty.md."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from pipeline.scoring.config import LoyaltyConfig
from pipeline.scoring.guards import OK, insufficient, observed_by, status, weighted_mean
from pipeline.scoring.rfm import money_sum, purchase_days, scores

UNCATEGORISED = "uncategorised"


def purchases_as_of(order_lines: pl.LazyFrame | pl.DataFrame, as_of: date) -> pl.LazyFrame:
    """Purchase lines (completed, quantity > 0) by the as-of date, guests included: company revenue and
    margins count guest orders, which rfm.completed_lines_as_of leaves out for per-customer scores."""
    return order_lines.lazy().filter(
        (pl.col("status") == "completed") & (pl.col("quantity") > 0) & observed_by("ordered_at", as_of)
    )


def category_breadth(completed: pl.LazyFrame) -> pl.LazyFrame:
    """Distinct product categories a customer bought (cross-buying); lines without a category do not count."""
    return completed.filter(pl.col("customer_id").is_not_null()).group_by("customer_id").agg(categories_bought())


def categories_bought() -> pl.Expr:
    """category_breadth as a per-customer aggregation, for rfm.rfm_base(also=...)."""
    return pl.col("category").drop_nulls().n_unique().cast(pl.Int32).alias("category_breadth")


def repeat_purchase_rate(frequency: pl.Expr) -> pl.Expr:
    """Share of customers with at least two distinct completed orders."""
    return (frequency >= 2).mean()


def retention(completed: pl.LazyFrame, as_of: date, period_days: int) -> pl.DataFrame:
    """One row: customers active in the previous period, how many of them are active in this one, and the rate.

    This period is the `period_days` days ending on the as-of date, the previous one the
    `period_days` before it; active = at least one completed purchase in the period. `completed`:
    completed lines or their rfm.purchase_days.
    """
    this_start = as_of - timedelta(days=period_days - 1)
    previous_start = this_start - timedelta(days=period_days)
    day = pl.col("day")
    active = (
        purchase_days(completed).filter((day >= previous_start) & (day <= as_of))
        .group_by("customer_id")
        .agg((day < this_start).any().alias("previous"), (day >= this_start).any().alias("current"))
    )
    return (
        active.select(
            pl.col("previous").sum().cast(pl.Int64).alias("previous_period_customers"),
            (pl.col("previous") & pl.col("current")).sum().cast(pl.Int64).alias("retained_customers"),
        )
        .with_columns(
            pl.when(pl.col("previous_period_customers") > 0)
            .then(pl.col("retained_customers") / pl.col("previous_period_customers"))
            .alias("retention_rate"),
            status(pl.col("previous_period_customers") > 0, "no customers active in the previous period")
            .alias("retention_status"),
        )
        .collect()
    )


def _unit(score: pl.Expr, bins: int = 5) -> pl.Expr:
    """Quantile score 1..bins to 0..1."""
    return (score - 1) / (bins - 1)


def with_loyalty_index(customers: pl.LazyFrame | pl.DataFrame, config: LoyaltyConfig, *,
                       tenure_cuts: Sequence[float | None] | None = None) -> pl.LazyFrame | pl.DataFrame:
    """Adds tenure_score, loyalty_behavioural, loyalty_attitudinal (0..1), loyalty_index (0..100), loyalty_basis.

    Needs r_score, f_score (quintiles), tenure_days, recommend_score (0-10) and satisfaction_score
    (1-7); the survey columns may be null. Behavioural = weighted mean of the recency, frequency and
    tenure quintiles mapped to 0..1; attitudinal = weighted mean of recommend/10 and
    (satisfaction-1)/6 over the answers there are. Without either, the index is behavioural only.
    `tenure_cuts`: the tenure quintiles' rfm.quantile_cuts over the whole population, when
    `customers` is a part of it.
    """
    bw, aw = config.behavioural_weights, config.attitudinal_weights
    scored = customers.with_columns(scores("tenure_days", bins=5, cuts=tenure_cuts).alias("tenure_score")).with_columns(
        weighted_mean([
            (_unit(pl.col("r_score")), bw["recency"]),
            (_unit(pl.col("f_score")), bw["frequency"]),
            (_unit(pl.col("tenure_score")), bw["tenure"]),
        ]).alias("loyalty_behavioural"),
        weighted_mean([
            (pl.col("recommend_score") / 10, aw["recommend"]),
            ((pl.col("satisfaction_score") - 1) / 6, aw["satisfaction"]),
        ]).alias("loyalty_attitudinal"),
    )
    attitude = pl.col("loyalty_attitudinal") if config.attitudinal_weight > 0 else pl.lit(None, dtype=pl.Float64)
    return scored.with_columns(
        (100 * weighted_mean([(pl.col("loyalty_behavioural"), config.behavioural_weight),
                              (attitude, config.attitudinal_weight)])).alias("loyalty_index"),
        pl.when(attitude.is_not_null()).then(pl.lit("behavioural_and_attitudinal"))
        .otherwise(pl.lit("behavioural_only")).alias("loyalty_basis"),
    )


def category_margins(completed: pl.LazyFrame, as_of: date) -> pl.DataFrame:
    """One row per product category over all purchase lines (guests too): revenue, gross margin, contribution.

    Margin is taken over the lines whose cost is known, and its rate over their revenue, so missing
    costs never count as zero cost; `cost_coverage` is the share of revenue with a known cost.
    Contribution = the category's share of company gross margin.
    """
    costed = pl.col("line_cost_amount").is_not_null()
    by_category = (
        completed.with_columns(
            pl.col("category").fill_null(UNCATEGORISED),
            pl.when(costed).then(pl.col("line_amount")).alias("costed_revenue"),
            pl.when(costed).then(pl.col("line_amount") - pl.col("line_cost_amount")).alias("margin"),
        )
        .group_by("category")
        .agg(
            money_sum("line_amount").alias("revenue_amount"),
            money_sum("costed_revenue").alias("costed_revenue_amount"),
            money_sum("margin").alias("gross_margin_amount"),
            costed.any().alias("has_cost"),
        )
        .sort("category")  # group_by returns groups in any order; the float totals below must not vary
        .collect()
    )
    total_revenue, total_margin = by_category["revenue_amount"].sum(), by_category["gross_margin_amount"].sum()
    return (
        by_category.with_columns(
            pl.lit(as_of).alias("as_of_date"),
            pl.when(pl.col("has_cost")).then(pl.col("gross_margin_amount")).alias("gross_margin_amount"),
            pl.when(pl.col("costed_revenue_amount") != 0)
            .then(pl.col("gross_margin_amount") / pl.col("costed_revenue_amount")).alias("gross_margin_rate"),
            (pl.col("revenue_amount") / total_revenue if total_revenue else pl.lit(None, pl.Float64)).alias("revenue_share"),
            pl.when(pl.col("has_cost") & (total_margin != 0))
            .then(pl.col("gross_margin_amount") / total_margin).alias("margin_contribution_share"),
            pl.when(pl.col("revenue_amount") != 0)
            .then(pl.col("costed_revenue_amount") / pl.col("revenue_amount")).alias("cost_coverage"),
            status(pl.col("has_cost"), "no cost data for the category").alias("margin_status"),
        )
        .select(
            "as_of_date", pl.col("category").cast(pl.String), "revenue_amount", "costed_revenue_amount", "gross_margin_amount",
            "gross_margin_rate", "revenue_share",
            "margin_contribution_share", "cost_coverage", "margin_status",
        )
        .sort("category")
    )


def company_margin(categories: pl.DataFrame) -> pl.DataFrame:
    """One row: company gross margin and its rate over the revenue with known costs."""
    costed_revenue = categories["costed_revenue_amount"].sum()
    margin = categories["gross_margin_amount"].sum()
    known = bool(categories["margin_status"].eq(OK).any())
    return pl.DataFrame({
        "gross_margin_amount": [margin if known else None],
        "gross_margin_rate": [margin / costed_revenue if known and costed_revenue else None],
        "margin_status": [OK if known else insufficient("no cost data")],
    }, schema={"gross_margin_amount": pl.Float64, "gross_margin_rate": pl.Float64, "margin_status": pl.String})
