"""Property-based tests of the scoring invariants, on the real functions.

Each property is the rule as docs/metrics.md, docs/metrics-clv.md and docs/metrics-lifecycle.md state
it, checked against an independent re-statement (plain Python, exact fractions) rather than against
the code's own constants:

- RFM: score = 1 + floor(5 (r - 1) / n) with min-rank ties, so 1..5, equal values share a score and
  row order does not matter; recency, frequency and monetary as defined.
- Pyramid: spenders ordered by spend (ties by customer_id) are cut at ceil(1 %), ceil(5 %), ceil(20 %)
  of n; every customer lands in exactly one tier; tier sizes are within one customer of 1/4/15/80 %.
- BG/NBD P(alive) is a probability, 1 without repeats, and never falls as the last purchase gets more
  recent (t_x up, i.e. RFM recency_days down) at fixed x and T, for given and for fitted parameters.
- Discounted CLV, expected purchases and expected spend are never negative.
- Sharding: the population's quantile and tier cut points score any part of it as the whole would.
"""
from __future__ import annotations

import json
import math
from datetime import date, datetime, time, timedelta, timezone
from fractions import Fraction

import numpy as np
import polars as pl
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from pipeline.scoring.clv import BGNBDFit, GammaGammaFit, discounted_clv, p_alive
from pipeline.scoring.config import ClvConfig
from pipeline.scoring.guards import OK, clv_scores, model_summary
from pipeline.scoring.pyramid import INACTIVE, TIER_RANK, assign_tiers, pyramid_summary, tier_cuts
from pipeline.scoring.rfm import (
    completed_lines_as_of, quantile_cuts, quantile_score, rfm_base, rfm_scores, score_by_cuts,
)

pytestmark = pytest.mark.property

AS_OF = date(2025, 12, 31)
FAST = settings(max_examples=60, deadline=None)
# Rounding slack for comparisons of two float evaluations that are equal or ordered mathematically.
ULPS = 8 * np.finfo(float).eps


# --------------------------------------------------------------------------
# RFM (docs/metrics.md, "RFM")
# --------------------------------------------------------------------------


def documented_score(values: list, value, *, higher_is_better: bool, bins: int = 5) -> int:
    """1 + floor(bins (r - 1) / n), r = 1 + the number of strictly worse customers (min rank of ties)."""
    worse = sum(1 for v in values if (v < value if higher_is_better else v > value))
    return 1 + (bins * worse) // len(values)


# Monetary amounts are sums in whole millionths (rfm.money_sum); a handful of repeated values forces ties.
monetary = st.one_of(
    st.sampled_from([0.0, 0.001, 9.99, 10.0, 10.000001, 250.5]),
    st.integers(0, 10**9).map(lambda units: units / 1_000_000),
)


@st.composite
def rfm_bases(draw, max_size: int = 80) -> pl.DataFrame:
    """One row per customer: recency_days, frequency, monetary_amount, with heavy ties."""
    rows = draw(st.lists(st.tuples(st.integers(0, 40), st.integers(1, 6), monetary), min_size=1, max_size=max_size))
    return pl.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(len(rows))],
            "recency_days": [r for r, _, _ in rows],
            "frequency": [f for _, f, _ in rows],
            "monetary_amount": [m for _, _, m in rows],
        },
        schema={"customer_id": pl.String, "recency_days": pl.Int32, "frequency": pl.Int32, "monetary_amount": pl.Float64},
    )


@FAST
@given(rfm_bases())
def test_rfm_scores_are_the_documented_quintiles(base):
    scored = rfm_scores(base.lazy()).collect()
    recency, frequency, money = (scored[c].to_list() for c in ("recency_days", "frequency", "monetary_amount"))
    for row in scored.iter_rows(named=True):
        expected = (
            documented_score(recency, row["recency_days"], higher_is_better=False),  # 5 = most recent
            documented_score(frequency, row["frequency"], higher_is_better=True),
            documented_score(money, row["monetary_amount"], higher_is_better=True),
        )
        assert (row["r_score"], row["f_score"], row["m_score"]) == expected, row
        assert all(1 <= s <= 5 for s in expected)
        assert row["rfm_cell"] == "".join(map(str, expected))
    # Customers with equal recency, frequency and monetary value share every score.
    per_profile = scored.group_by("recency_days", "frequency", "monetary_amount").agg(pl.col("rfm_cell").n_unique())
    assert per_profile["rfm_cell"].max() == 1


@FAST
@given(st.integers(5, 400), st.sampled_from(["recency_days", "frequency", "monetary_amount"]), st.randoms(use_true_random=False))
def test_without_ties_each_quintile_holds_a_fifth_of_the_customers(n, letter, random):
    values = list(range(n))
    random.shuffle(values)
    base = pl.DataFrame({
        "customer_id": [f"C{i:04d}" for i in range(n)],
        "recency_days": values if letter == "recency_days" else [0] * n,
        "frequency": values if letter == "frequency" else [1] * n,
        "monetary_amount": [float(v) for v in values] if letter == "monetary_amount" else [1.0] * n,
    }, schema_overrides={"recency_days": pl.Int32, "frequency": pl.Int32})
    score = {"recency_days": "r_score", "frequency": "f_score", "monetary_amount": "m_score"}[letter]
    counts = dict(rfm_scores(base.lazy()).collect()[score].value_counts().rows())
    assert sorted(counts) == [1, 2, 3, 4, 5]
    assert all(abs(c - n / 5) < 1 for c in counts.values()), counts  # a fifth, within rounding


@FAST
@given(rfm_bases(), st.data())
def test_rfm_scores_do_not_depend_on_row_order(base, data):
    order = data.draw(st.permutations(range(base.height)))
    scored = rfm_scores(base.lazy()).collect().sort("customer_id")
    shuffled = rfm_scores(base[list(order)].lazy()).collect().sort("customer_id")
    assert_frame_equal(scored, shuffled)


def at(offset_days: int, hour: int) -> datetime:
    """A UTC timestamp `offset_days` before the as-of date (negative: after it)."""
    return datetime.combine(AS_OF - timedelta(days=offset_days), time(hour), timezone.utc)


order_line = st.tuples(
    st.integers(0, 4),  # customer
    st.integers(0, 3),  # order of that customer
    st.integers(-3, 500),  # days before the as-of date
    st.integers(0, 23),
    st.sampled_from([0.001, 0.1, 0.2, 0.3, 9.99, 10.0, 1234.5678]),
    st.sampled_from(["completed", "completed", "completed", "cancelled", "returned"]),
    st.sampled_from([1, 1, 2, 0, -1]),
)


def order_lines(rows: list[tuple]) -> pl.LazyFrame:
    return pl.DataFrame(
        [(f"C{c}", f"C{c}-O{o}", at(d, h), amount, status, q) for c, o, d, h, amount, status, q in rows],
        schema={"customer_id": pl.String, "order_id": pl.String, "ordered_at": pl.Datetime("us", "UTC"),
                "line_amount": pl.Float64, "status": pl.String, "quantity": pl.Int64},
        orient="row",
    ).lazy()


def rfm_table(lines: pl.LazyFrame) -> pl.DataFrame:
    return rfm_scores(rfm_base(completed_lines_as_of(lines, AS_OF), AS_OF)).collect().sort("customer_id")


@FAST
@given(st.lists(order_line, max_size=60), st.data())
def test_rfm_from_order_lines_matches_the_definitions_and_ignores_row_order(rows, data):
    table = rfm_table(order_lines(rows))
    counted = [r for r in rows if r[5] == "completed" and r[6] > 0 and r[2] >= 0]  # on or before the as-of date
    assert sorted(table["customer_id"]) == sorted({f"C{r[0]}" for r in counted})
    for row in table.iter_rows(named=True):
        mine = [r for r in counted if f"C{r[0]}" == row["customer_id"]]
        assert row["frequency"] == len({r[1] for r in mine})  # distinct completed orders
        # Net revenue, summed in whole millionths (docs/metrics.md): exact, whatever the order of the lines.
        assert row["monetary_amount"] == sum(round(r[4] * 1_000_000) for r in mine) / 1_000_000
        assert row["recency_days"] == min(r[2] for r in mine)  # as-of date - date of the last order
    # Money is summed in whole millionths, so any row order gives the same bytes.
    order = data.draw(st.permutations(range(len(rows))))
    assert_frame_equal(table, rfm_table(order_lines([rows[i] for i in order])))


# --------------------------------------------------------------------------
# Customer pyramid (docs/metrics.md, "Customer pyramid")
# --------------------------------------------------------------------------

DOCUMENTED_CUTS = [("vip", Fraction(1, 100)), ("key", Fraction(5, 100)), ("ordinary", Fraction(20, 100)), ("small", Fraction(1))]
DOCUMENTED_SHARES = {"vip": 0.01, "key": 0.04, "ordinary": 0.15, "small": 0.80}


def documented_tiers(spend: dict[str, float]) -> dict[str, str]:
    """Spenders by spend descending, ties by customer_id; position p is in the first tier whose
    cut-off ceil(share n) it does not exceed; no positive spend: inactive."""
    spenders = sorted((c for c, s in spend.items() if s > 0), key=lambda c: (-spend[c], c))
    n = len(spenders)
    cuts = [(name, math.ceil(share * n)) for name, share in DOCUMENTED_CUTS]
    tiers = {c: INACTIVE for c, s in spend.items() if s <= 0}
    for position, customer in enumerate(spenders, start=1):
        tiers[customer] = next(name for name, last in cuts if position <= last)
    return tiers


def spend_frame(spend: dict[str, float]) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": list(spend), "window_spend_amount": list(spend.values())},
                        schema={"customer_id": pl.String, "window_spend_amount": pl.Float64})


def check_tiers(spend: dict[str, float], tiered: pl.DataFrame) -> None:
    got = dict(tiered.select("customer_id", "pyramid_tier").rows())
    assert tiered.height == len(spend) and got.keys() == spend.keys()  # each customer exactly once
    assert got == documented_tiers(spend)
    n = sum(1 for s in spend.values() if s > 0)
    counts = {tier: list(got.values()).count(tier) for tier in DOCUMENTED_SHARES}
    assert sum(counts.values()) == n
    for tier, share in DOCUMENTED_SHARES.items():
        assert abs(counts[tier] - share * n) < 1, (tier, counts, n)  # 1/4/15/80 % within rounding
    # A customer who spent more is never in a lower tier.
    by_spend = sorted(spend, key=lambda c: spend[c])
    ranks = [TIER_RANK[got[c]] for c in by_spend]
    for (low, high), (r_low, r_high) in zip(zip(by_spend, by_spend[1:]), zip(ranks, ranks[1:])):
        if spend[high] > spend[low]:
            assert r_high <= r_low


customer_ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6)
window_spend = st.one_of(st.sampled_from([0.0, -5.0, 1.0, 1.0, 99.99, 100.0]), st.integers(-10**6, 10**9).map(lambda u: u / 1000))
revenue = st.one_of(st.sampled_from([0.0, 1.0, 99.99, 100.0]), st.integers(0, 10**9).map(lambda u: u / 1000))


@FAST
@given(st.dictionaries(customer_ids, window_spend, max_size=150), st.randoms(use_true_random=False))
def test_pyramid_tiers_are_the_documented_cut_offs(spend, random):
    tiered = assign_tiers(spend_frame(spend))
    check_tiers(spend, tiered)
    items = list(spend.items())
    random.shuffle(items)  # row order does not change any customer's tier
    shuffled = assign_tiers(spend_frame(dict(items)))
    def tier_of(frame: pl.DataFrame) -> dict[str, str]:
        return dict(frame.select("customer_id", "pyramid_tier").rows())

    assert tier_of(shuffled) == tier_of(tiered)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 400), st.floats(0.0, 0.3), st.integers(0, 2**32 - 1))
def test_pyramid_partitions_large_populations_in_1_4_15_80(n, distinct, idle_share, seed):
    """Thousands of customers, so that every tier is populated, with many spend ties across the cut-offs."""
    rng = np.random.default_rng(seed)
    levels = np.round(rng.lognormal(4, 1.5, distinct), 2)
    values = np.where(rng.random(n) < idle_share, 0.0, rng.choice(levels, n))
    spend = {f"K{i:05d}": float(v) for i, v in zip(rng.permutation(n), values)}
    check_tiers(spend, assign_tiers(spend_frame(spend)))


@FAST
@given(st.dictionaries(customer_ids, revenue, max_size=120))
def test_pyramid_summary_accounts_for_every_customer_and_all_revenue(spend):
    tiers = assign_tiers(spend_frame(spend))
    summary = pyramid_summary(tiers, AS_OF)
    assert summary["pyramid_tier"].to_list() == list(TIER_RANK)  # every tier has its row, in rank order
    assert summary["customers"].sum() == len(spend)
    total = sum(spend.values())
    assert summary["revenue_amount"].sum() == pytest.approx(total, rel=1e-12, abs=1e-6)
    if total > 0:
        assert summary["revenue_share"].sum() == pytest.approx(1.0, abs=1e-9)
        assert summary["revenue_share"].min() >= 0


# --------------------------------------------------------------------------
# Sharded scoring (pipeline/scoring/shards.py): cut points score any part as the whole would
# --------------------------------------------------------------------------


@FAST
@given(rfm_bases(max_size=150), st.sampled_from([3, 5]), st.integers(1, 6), st.randoms(use_true_random=False))
def test_quantile_cuts_score_every_part_as_the_population(base, bins, parts, random):
    """rfm.quantile_cuts + score_by_cuts on any split of the customers equals quantile_score on all of them."""
    shard = pl.Series([random.randrange(parts) for _ in range(base.height)])
    for column, better in (("recency_days", False), ("frequency", True), ("monetary_amount", True)):
        whole = base.select(quantile_score(pl.col(column), bins=bins, higher_is_better=better).alias("s"))["s"]
        cuts = quantile_cuts(base[column], bins=bins, higher_is_better=better)
        assert len(cuts) == bins - 1
        for part in range(parts):
            mine = shard == part
            got = base.filter(mine).select(score_by_cuts(pl.col(column), cuts, higher_is_better=better).alias("s"))["s"]
            assert got.to_list() == whole.filter(mine).to_list(), (column, cuts)


@FAST
@given(st.dictionaries(customer_ids, window_spend, max_size=150), st.integers(1, 6), st.randoms(use_true_random=False))
def test_tier_cuts_tier_every_part_as_the_population(spend, parts, random):
    """pyramid.tier_cuts + assign_tiers(cuts=) on any split equals assign_tiers on all customers,
    spend ties across a cut-off included (split by customer_id)."""
    whole = dict(assign_tiers(spend_frame(spend)).select("customer_id", "pyramid_tier").rows())
    cuts = tier_cuts(spend_frame(spend))
    shard = {customer: random.randrange(parts) for customer in spend}
    for part in range(parts):
        mine = {c: v for c, v in spend.items() if shard[c] == part}
        got = dict(assign_tiers(spend_frame(mine), cuts=cuts).select("customer_id", "pyramid_tier").rows())
        assert got == {c: whole[c] for c in mine}


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 3000), st.integers(1, 300), st.integers(2, 8), st.integers(0, 2**32 - 1))
def test_tier_cuts_hold_for_large_tied_populations(n, distinct, parts, seed):
    rng = np.random.default_rng(seed)
    values = np.where(rng.random(n) < 0.1, 0.0, rng.choice(np.round(rng.lognormal(4, 1.5, distinct), 2), n))
    spend = {f"K{i:05d}": float(v) for i, v in zip(rng.permutation(n), values)}
    whole = dict(assign_tiers(spend_frame(spend)).select("customer_id", "pyramid_tier").rows())
    cuts, shard = tier_cuts(spend_frame(spend)), rng.integers(0, parts, n)
    for part in range(parts):
        mine = {c: v for (c, v), s in zip(spend.items(), shard) if s == part}
        assert dict(assign_tiers(spend_frame(mine), cuts=cuts).select("customer_id", "pyramid_tier").rows()) == \
            {c: whole[c] for c in mine}


# --------------------------------------------------------------------------
# BG/NBD P(alive) and CLV (docs/metrics-clv.md; guards in docs/metrics-lifecycle.md)
# --------------------------------------------------------------------------


def bgnbd(r: float, alpha: float, a: float, b: float) -> BGNBDFit:
    return BGNBDFit(r, alpha, a, b, np.nan, True, 0, 0, 0, 0, "given", 0.0)


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log(low), math.log(high)).map(math.exp)


# Far wider than any fit on real data: r, a, b over six decades, alpha over seven.
bgnbd_params = st.builds(bgnbd, log_uniform(1e-3, 1e3), log_uniform(1e-3, 1e4), log_uniform(1e-3, 1e3), log_uniform(1e-3, 1e3))


@st.composite
def histories(draw, max_size: int = 25) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid (x, t_x, T): x >= 0 whole, 0 <= t_x <= T, t_x = 0 when x = 0."""
    n = draw(st.integers(1, max_size))
    x = np.array(draw(st.lists(st.one_of(st.integers(0, 12), st.integers(0, 50_000)), min_size=n, max_size=n)), float)
    T = np.array(draw(st.lists(st.floats(0.0, 5_000.0), min_size=n, max_size=n)))
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    return x, np.where(x > 0, share * T, 0.0), T


@FAST
@given(bgnbd_params, histories())
def test_p_alive_is_a_probability(fit, history):
    x, t_x, T = history
    alive = p_alive(fit, x, t_x, T)
    assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
    assert np.all(alive[x == 0] == 1.0)  # nobody drops out before a repeat purchase


@FAST
@given(bgnbd_params, st.integers(1, 50_000), st.floats(1e-3, 5_000.0), st.lists(st.floats(0.0, 1.0), min_size=2, max_size=30))
def test_p_alive_does_not_fall_as_the_last_purchase_gets_more_recent(fit, x, T, shares):
    """At fixed x and T, a later last purchase (larger t_x, i.e. fewer days since it) is never less alive."""
    t_x = np.sort(np.array([0.0, 1.0, *shares]) * T)
    alive = p_alive(fit, x, t_x, T)
    assert np.all(np.diff(alive) >= -ULPS * alive[1:]), np.diff(alive).min()
    assert alive[-1] == pytest.approx(1 / (1 + fit.a / (fit.b + x - 1)), rel=1e-12)  # t_x = T: the bound in the docs


@FAST
@given(
    bgnbd_params,
    histories(),
    st.builds(lambda p, q, v: GammaGammaFit(p, q, v, np.nan, True, 0, 0, "given", 0.0),
              log_uniform(1e-2, 1e2), log_uniform(1.001, 1e2), log_uniform(1e-2, 1e4)),
    st.lists(st.one_of(st.just(0.0), st.floats(0.0, 1e6)), min_size=25, max_size=25),
    st.floats(-0.5, 1.0),
    st.sampled_from([(52, 4), (52, 1), (13, 13), (12, 0.5)]),
)
def test_discounted_clv_is_never_negative(fit, history, gg, spend, discount, horizon_step):
    x, t_x, T = history
    m = np.where(x > 0, np.array(spend[: len(x)]), 0.0)
    horizon, step = horizon_step
    with np.errstate(all="ignore"):
        try:
            clv = discounted_clv(fit, gg, x, t_x, T, m, horizon_periods=horizon, discount_rate_per_period=discount, step=step)
        except (FloatingPointError, ValueError) as error:  # documented refusals (2F1 at extreme parameters, p x + q <= 1)
            event(f"refused: {type(error).__name__}")
            return
    assert np.all(np.isfinite(clv)) and np.all(clv >= 0), clv.min()


@st.composite
def purchase_logs(draw) -> pl.DataFrame:
    """Completed order lines from the BG/NBD and Gamma-Gamma story: Poisson purchasing, dropout after
    each repeat, gamma spend around a customer-specific mean. First purchases share a few days, so that
    customers with equal x and T (and different t_x) exist to compare."""
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(40, 140))
    span = draw(st.integers(30, 730))
    first_days = draw(st.integers(2, 15))
    rate = draw(st.floats(0.01, 0.3))  # purchases per day while alive
    dropout = (draw(st.floats(0.3, 3.0)), draw(st.floats(0.5, 8.0)))
    spend_shape, spend_q = draw(st.floats(1.0, 8.0)), draw(st.floats(1.5, 6.0))
    lines_per_order = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, span, first_days)
    rows = []
    for c in range(n):
        day, k = int(rng.choice(starts)), 0
        nu = rng.gamma(spend_q, 1 / 50.0)  # the customer's spend rate: nu ~ Gamma(q, gamma = 50)
        lam, p = rng.gamma(2.0, rate / 2.0), rng.beta(*dropout)
        while day >= 0:
            amount = float(np.round(rng.gamma(spend_shape, 1 / nu), 2))
            for line in range(int(rng.integers(1, lines_per_order + 1))):
                rows.append((f"C{c:04d}", f"C{c:04d}-{k}", at(day, int(rng.integers(0, 24))), amount / (line + 1)))
            k += 1
            if k > 1 and rng.random() < p:
                break
            day -= max(1, int(round(rng.exponential(1 / lam))))
    note(f"{n} customers, {len(rows)} lines, span {span} days, {first_days} first-purchase days")
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "order_id": pl.String,
                                      "ordered_at": pl.Datetime("us", "UTC"), "line_amount": pl.Float64},
                        orient="row").with_columns(pl.lit("completed").alias("status"), pl.lit(1).alias("quantity"))


@st.composite
def clv_configs(draw) -> ClvConfig:
    step = draw(st.sampled_from([1.0, 4.0, 13.0]))
    return ClvConfig(
        horizon_periods=step * draw(st.integers(1, 8)), step_periods=step,
        annual_discount_rate=draw(st.floats(-0.5, 1.0)), margin=draw(st.floats(0.0, 1.0)),
    )


@settings(max_examples=20, deadline=None)
@given(purchase_logs(), clv_configs())
def test_fitted_clv_scores_obey_their_invariants(log, config):
    completed = completed_lines_as_of(log.lazy(), AS_OF)
    scores = clv_scores(completed, AS_OF, config)
    customers = scores.customers
    summary = model_summary(completed, AS_OF, config.period_days)
    rfm = rfm_base(completed, AS_OF).collect()
    table = customers.join(summary, on="customer_id").join(rfm.select("customer_id", "recency_days"), on="customer_id")
    assert customers.height == table.height == log["customer_id"].n_unique()
    event(f"bgnbd {customers['bgnbd_status'][0].split(':')[0]}, clv {customers['clv_status'][0].split(':')[0]}")

    # A score is there exactly when its status is ok; every one that is there is in its range.
    for value, status in [("p_alive", "bgnbd_status"), ("expected_purchases", "expected_purchases_status"),
                          ("expected_average_value", "expected_value_status"), ("clv_amount", "clv_status")]:
        assert (table[value].is_not_null() == (table[status] == OK)).all(), value
        assert (table[value].drop_nulls() >= 0).all(), value
    assert (table["p_alive"].drop_nulls() <= 1).all()
    assert (table.filter(pl.col("frequency") == 0)["p_alive"].drop_nulls() == 1.0).all()

    # BG/NBD recency t_x runs from the first to the last purchase; RFM recency_days from the last
    # purchase to the as-of date: t_x = T - recency_days (in periods).
    assert np.allclose(table["recency"], table["T"] - table["recency_days"] / config.period_days, rtol=0, atol=1e-9)
    if customers["bgnbd_status"][0] != OK:
        return
    # At equal x and T, fewer days since the last purchase never means a lower P(alive).
    compared = 0
    for group in table.filter(pl.col("frequency") > 0).partition_by("frequency", "T"):
        ordered = group.sort("recency_days")
        alive = ordered["p_alive"].to_numpy()
        assert np.all(np.diff(alive) <= ULPS * alive[:-1]), ordered.select("customer_id", "recency_days", "p_alive")
        compared += len(alive) - 1
    event(f"compared {'no' if compared == 0 else 'some'} pairs of customers with equal x and T")
    # The same over a fine grid of t_x, with the fitted parameters.
    params = json.loads(scores.fits.filter(pl.col("model") == "bgnbd")["parameters"][0])
    fit = bgnbd(params["r"], params["alpha"], params["a"], params["b"])
    for x, T in table.filter(pl.col("frequency") > 0).select("frequency", "T").unique().rows():
        alive = p_alive(fit, x, np.linspace(0.0, T, 50), T)
        assert np.all(np.diff(alive) >= -ULPS * alive[1:])
