from datetime import date, datetime

import polars as pl
import pytest

from pipeline.scoring.pyramid import assign_tiers, tier_cutoffs
from pipeline.scoring.rfm import completed_lines_as_of, quantile_score, rfm_base

AS_OF = date(2025, 12, 31)


def lines(rows) -> pl.LazyFrame:
    return pl.DataFrame(
        rows, schema=["customer_id", "order_id", "ordered_at", "line_amount", "status"], orient="row"
    ).with_columns(pl.col("ordered_at").dt.replace_time_zone("UTC"), pl.lit(1).alias("quantity")).lazy()


def rfm(frame: pl.LazyFrame) -> pl.DataFrame:
    return rfm_base(completed_lines_as_of(frame, AS_OF), AS_OF).collect()


def at(day: int, month: int = 12) -> datetime:
    return datetime(2025, month, day, 12)


def test_rfm_counts_distinct_completed_orders_and_net_revenue():
    frame = lines([
        ("A", "o1", at(1), 10.0, "completed"), ("A", "o1", at(1), 5.0, "completed"),
        ("A", "o2", at(20), 7.0, "completed"), ("A", "o3", at(25), 100.0, "cancelled"),
        ("A", "o4", at(26), 50.0, "returned"), ("B", "o5", at(30), 3.0, "completed"),
    ])
    scores = rfm(frame)
    a = scores.filter(pl.col("customer_id") == "A").row(0, named=True)
    assert (a["frequency"], a["monetary_amount"], a["recency_days"]) == (2, 22.0, 11)


def test_orders_after_the_as_of_date_are_ignored():
    frame = lines([("A", "o1", at(1), 10.0, "completed"), ("A", "o2", datetime(2026, 1, 1, 0, 30), 99.0, "completed")])
    scores = rfm(frame)
    assert scores["monetary_amount"].to_list() == [10.0]


def test_quantile_scores_are_one_to_five_and_ties_share_a_score():
    values = pl.DataFrame({"v": [1, 1, 1, 2, 3, 4, 5, 6, 7, 8]})
    out = values.select(quantile_score(pl.col("v")).alias("s"))["s"].to_list()
    assert min(out) == 1 and max(out) == 5
    assert len(set(out[:3])) == 1  # the three tied values score alike
    assert out == sorted(out)  # monotone in the value


def test_recency_scores_reward_the_most_recent():
    values = pl.DataFrame({"days": [0, 100, 300, 5, 50]})
    out = values.select(quantile_score(pl.col("days"), higher_is_better=False).alias("s"))["s"].to_list()
    assert out[0] == 5 and out[2] == 1


@pytest.mark.parametrize("n", [1, 7, 100, 1000, 12345])
def test_pyramid_partitions_customers_in_1_4_15_80(n):
    spend = pl.DataFrame({"customer_id": [f"C{i:06d}" for i in range(n)], "window_spend_amount": [float(n - i) for i in range(n)]})
    tiers = assign_tiers(spend)["pyramid_tier"].value_counts()
    counts = dict(tiers.rows())
    assert sum(counts.values()) == n
    cut = dict(tier_cutoffs(n))
    assert counts["vip"] == cut["vip"]
    assert counts.get("key", 0) == cut["key"] - cut["vip"]
    if n >= 100:
        assert counts["vip"] / n == pytest.approx(0.01, abs=1 / n)
        assert counts["small"] / n == pytest.approx(0.80, abs=1 / n)


def test_pyramid_ranks_by_spend_and_non_spenders_are_inactive():
    spend = pl.DataFrame({"customer_id": ["a", "b", "c"], "window_spend_amount": [5.0, 500.0, 0.0]})
    tiers = dict(assign_tiers(spend).select("customer_id", "pyramid_tier").rows())
    assert tiers == {"b": "vip", "a": "small", "c": "inactive"}  # 2 spenders: ceil(1%)=1 VIP, the other at 100%
