"""Repeat purchase, retention, category breadth, the loyalty index and category margins, by hand."""
from datetime import date, datetime, timezone

import polars as pl
import pytest

from pipeline.scoring.config import LoyaltyConfig
from pipeline.scoring.loyalty import (
    category_breadth,
    category_margins,
    company_margin,
    purchases_as_of,
    repeat_purchase_rate,
    retention,
    with_loyalty_index,
)
from pipeline.scoring.rfm import completed_lines_as_of

AS_OF = date(2025, 12, 31)


def lines(rows: list[tuple]) -> pl.LazyFrame:
    """(customer_id, day, category, line_amount, line_cost_amount, status) -> completed-or-not order lines."""
    return pl.DataFrame(
        [(c, f"o{i}", datetime(*d, 12, tzinfo=timezone.utc), cat, amount, cost, status)
         for i, (c, d, cat, amount, cost, status) in enumerate(rows)],
        schema={"customer_id": pl.String, "order_id": pl.String, "ordered_at": pl.Datetime("us", "UTC"),
                "category": pl.String, "line_amount": pl.Float64, "line_cost_amount": pl.Float64, "status": pl.String},
        orient="row",
    ).with_columns(pl.lit(1, pl.Int32).alias("quantity")).lazy()


def purchase_days(days: dict[str | None, list[tuple]]) -> pl.LazyFrame:
    return completed_lines_as_of(
        lines([(c, d, "x", 1.0, None, "completed") for c, ds in days.items() for d in ds]), AS_OF
    )


def test_repeat_purchase_rate_is_the_share_with_two_or_more_orders():
    frame = pl.DataFrame({"frequency": [1, 2, 3, 1]})
    assert frame.select(repeat_purchase_rate(pl.col("frequency")))[0, 0] == 0.5


def test_retention_over_30_day_periods():
    # This period: 2025-12-02..12-31; previous: 2025-11-02..12-01.
    completed = purchase_days({
        "A": [(2025, 11, 15), (2025, 12, 20)],  # both: retained
        "B": [(2025, 11, 2)],  # previous only (first day of it)
        "C": [(2025, 12, 2)],  # this period only (first day of it)
        "D": [(2025, 11, 1), (2025, 12, 10)],  # before the previous period, then this one
        "E": [(2025, 12, 1), (2025, 12, 31)],  # last day of the previous period, last of this one: retained
        None: [(2025, 11, 15), (2025, 12, 15)],  # guests are not customers
    })
    out = retention(completed, AS_OF, 30).row(0, named=True)
    assert (out["previous_period_customers"], out["retained_customers"]) == (3, 2)
    assert out["retention_rate"] == pytest.approx(2 / 3)
    assert out["retention_status"] == "ok"


def test_retention_without_a_previous_period_is_insufficient():
    out = retention(purchase_days({"A": [(2025, 12, 20)]}), AS_OF, 30).row(0, named=True)
    assert out["retention_rate"] is None
    assert out["retention_status"] == "insufficient_data: no customers active in the previous period"


def test_category_breadth_counts_distinct_known_categories():
    completed = completed_lines_as_of(lines([
        ("A", (2025, 1, 1), "a", 1.0, None, "completed"), ("A", (2025, 2, 1), "a", 1.0, None, "completed"),
        ("A", (2025, 3, 1), "b", 1.0, None, "completed"), ("A", (2025, 4, 1), None, 1.0, None, "completed"),
        ("A", (2025, 5, 1), "c", 1.0, None, "cancelled"), ("B", (2025, 5, 1), None, 1.0, None, "completed"),
    ]), AS_OF)
    assert dict(category_breadth(completed).collect().rows()) == {"A": 2, "B": 0}


def scored_customers() -> pl.DataFrame:
    # Tenure 10..50 days give tenure quintiles 1..5.
    return pl.DataFrame({
        "customer_id": ["top", "bottom", "silent", "mid", "sat_only"],
        "r_score": [5, 1, 3, 5, 2], "f_score": [5, 1, 1, 3, 2], "tenure_days": [50, 10, 30, 20, 40],
        "recommend_score": [10.0, 0.0, None, 5.0, None], "satisfaction_score": [7.0, None, None, 4.0, 7.0],
    }, schema_overrides={"r_score": pl.Int16, "f_score": pl.Int16, "tenure_days": pl.Int32})


def test_loyalty_index_by_hand():
    out = {r["customer_id"]: r for r in with_loyalty_index(scored_customers(), LoyaltyConfig()).iter_rows(named=True)}
    assert [out[c]["tenure_score"] for c in ("bottom", "mid", "silent", "sat_only", "top")] == [1, 2, 3, 4, 5]
    assert out["top"]["loyalty_index"] == pytest.approx(100.0)
    assert out["bottom"]["loyalty_index"] == pytest.approx(0.0)  # recommend 0; satisfaction missing
    # Behavioural (R 0.5, F 0, tenure 0.5) / 3; no survey answers: behavioural only.
    assert out["silent"]["loyalty_index"] == pytest.approx(100 / 3)
    assert out["silent"]["loyalty_basis"] == "behavioural_only"
    # Behavioural (1 + 0.5 + 0.25) / 3, attitudinal (5/10 + 3/6) / 2, halved.
    assert out["mid"]["loyalty_index"] == pytest.approx(100 * (1.75 / 3 + 0.5) / 2)
    assert out["mid"]["loyalty_basis"] == "behavioural_and_attitudinal"
    # Satisfaction 7 alone carries the attitude: (0.25 + 0.25 + 0.75) / 3 and 1.
    assert out["sat_only"]["loyalty_index"] == pytest.approx(100 * (1.25 / 3 + 1.0) / 2)


def test_loyalty_weights_are_configurable():
    config = LoyaltyConfig(behavioural_weight=1.0, attitudinal_weight=0.0,
                           behavioural_weights={"recency": 1.0, "frequency": 0.0, "tenure": 0.0})
    out = with_loyalty_index(scored_customers(), config)
    assert out["loyalty_index"].to_list() == pytest.approx([100.0, 0.0, 50.0, 100.0, 25.0])  # recency alone
    assert set(out["loyalty_basis"]) == {"behavioural_only"}


MARGIN_LINES = [
    ("C1", (2025, 3, 1), "a", 100.0, 60.0, "completed"),
    ("C2", (2025, 3, 2), "a", 50.0, 20.0, "completed"),
    (None, (2025, 3, 3), "a", 50.0, 25.0, "completed"),  # guests count for the company
    ("C1", (2025, 3, 4), "a", 999.0, 1.0, "cancelled"),
    ("C1", (2025, 3, 5), "b", 200.0, None, "completed"),  # cost unknown: not a zero cost
    ("C2", (2025, 3, 6), "b", 100.0, 50.0, "completed"),
    ("C3", (2025, 3, 7), None, 50.0, None, "completed"),
]


def test_category_margins_by_hand():
    margins = category_margins(purchases_as_of(lines(MARGIN_LINES), AS_OF), AS_OF)
    out = {r["category"]: r for r in margins.iter_rows(named=True)}
    assert set(out) == {"a", "b", "uncategorised"}
    a, b, none = out["a"], out["b"], out["uncategorised"]
    assert (a["revenue_amount"], a["gross_margin_amount"], a["gross_margin_rate"]) == (200.0, 95.0, 0.475)
    assert (b["revenue_amount"], b["gross_margin_amount"], b["gross_margin_rate"]) == (300.0, 50.0, 0.5)
    assert b["cost_coverage"] == pytest.approx(1 / 3)
    assert a["revenue_share"] == pytest.approx(200 / 550)
    assert a["margin_contribution_share"] == pytest.approx(95 / 145)
    assert b["margin_contribution_share"] == pytest.approx(50 / 145)
    assert none["gross_margin_amount"] is None and none["margin_contribution_share"] is None
    assert none["margin_status"] == "insufficient_data: no cost data for the category"


def test_company_margin_is_over_revenue_with_known_costs():
    categories = category_margins(purchases_as_of(lines(MARGIN_LINES), AS_OF), AS_OF)
    out = company_margin(categories).row(0, named=True)
    assert out["gross_margin_amount"] == 145.0
    assert out["gross_margin_rate"] == pytest.approx(145 / 300)
    no_costs = category_margins(purchases_as_of(lines([("C", (2025, 1, 1), "a", 5.0, None, "completed")]), AS_OF), AS_OF)
    assert company_margin(no_costs).row(0) == (None, None, "insufficient_data: no cost data")
