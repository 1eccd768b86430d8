"""Sharded scoring (pipeline/scoring/shards.py): N shards give the tables of one daily_scores run, frame
for frame, on a staged history with the cases that couple customers: quantile and tier ties across
shard boundaries, guests, an order re-exported to another customer, surveys and complaints."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from pipeline.scoring.daily import SCORE_TABLES, daily_scores, staged_inputs, staged_scans
from pipeline.scoring.keys import CustomerKeys
from pipeline.scoring.shard_count import shard_count
from pipeline.settings import load_settings
from pipeline.scoring.shards import (
    in_shard,
    merge_scores,
    plan_frames,
    plan_of,
    plan_scores,
    shard_inputs,
    shard_scores,
)
from tests.support.staged import scoring_history

AS_OF = date(2025, 12, 31)


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    return scoring_history(tmp_path_factory.mktemp("staging"))


@pytest.fixture(scope="module")
def unsharded(staging):
    return daily_scores(**staged_inputs(staging, AS_OF), as_of=AS_OF)


def sharded(staging, count: int, store=None) -> dict[str, pl.DataFrame]:
    scans = staged_scans(staging, AS_OF)
    plan = plan_scores(**scans, as_of=AS_OF, count=count)
    if store is not None:  # through Parquet files, as the plan, shard and merge tasks hand it over
        for name, frame in plan_frames(plan).items():
            frame.write_parquet(store / f"{name}.parquet")
        plan = plan_of({path.stem: pl.read_parquet(path) for path in store.glob("*.parquet")})
    parts = [shard_scores(**shard_inputs(scans, i, count), plan=plan, index=i, as_of=AS_OF) for i in range(count)]
    assert sum(part.height for part in parts) == plan.history.clv.customers.height
    return merge_scores(plan, parts, as_of=AS_OF)


@pytest.mark.parametrize("count", [1, 2, 4, 7])
def test_shards_give_the_unsharded_tables_frame_for_frame(staging, unsharded, count, tmp_path):
    tables = sharded(staging, count, store=tmp_path)
    assert tuple(tables) == SCORE_TABLES
    for name in SCORE_TABLES:
        assert tables[name].equals(unsharded[name]), name


def test_the_history_exercises_the_couplings(unsharded):
    customers = unsharded["customer_score_daily"]
    tied = customers.filter(pl.col("customer_id").str.starts_with("T")).sort("customer_id")
    assert tied["pyramid_tier"].n_unique() > 1  # the VIP cut falls inside the tie
    assert customers["f_score"].n_unique() > 1 and customers["tenure_score"].n_unique() == 5
    assert customers["customer_id"].is_unique().all() and customers["customer_id"].is_sorted()
    assert (customers["survey_responses"] > 0).sum() > 100 and (customers["complaints"] > 0).sum() > 50
    assert unsharded["kpi_daily"]["cronbach_alpha_per_reliability"].is_not_null().all()


def test_a_re_exported_order_counts_once_for_its_latest_customer(staging):
    orders = staged_inputs(staging, AS_OF)["orders"].filter(pl.col("order_id") == "moved")
    assert orders.select("customer_id", "line_amount").rows() == [("C0002", 75.0)]
    assert in_shard(staged_scans(staging, AS_OF)["orders"], 0, 1).filter(pl.col("order_id") == "moved").collect().height == 1


def test_more_shards_than_customers_leaves_some_empty(staging, unsharded):
    scans = staged_scans(staging, AS_OF)
    plan = plan_scores(**scans, as_of=AS_OF, count=1000)
    sizes = [in_shard(scans["orders"], i, 1000).select(pl.col("customer_id").n_unique()).collect().item() for i in (0, 1, 2)]
    empty = next(i for i in range(1000) if in_shard(plan.history.clv.customers.lazy(), i, 1000).collect().is_empty())
    part = shard_scores(**shard_inputs(scans, empty, 1000), plan=plan, index=empty, as_of=AS_OF)
    assert part.is_empty() and part.schema == unsharded["customer_score_daily"].schema
    assert max(sizes) < 10


def test_every_customer_is_in_exactly_one_shard(staging):
    orders = staged_scans(staging, AS_OF)["orders"]
    ids = [in_shard(orders, i, 5).select("customer_id").unique().collect()["customer_id"] for i in range(5)]
    everyone = orders.select(pl.col("customer_id").drop_nulls().unique()).collect()["customer_id"]
    assert sum(len(part) for part in ids) == len(everyone)
    assert set().union(*map(set, ids)) == set(everyone)
    with pytest.raises(ValueError, match="shard 5 of 5"):
        in_shard(orders, 5, 5)


def test_the_merge_needs_every_shard(staging):
    scans = staged_scans(staging, AS_OF)
    plan = plan_scores(**scans, as_of=AS_OF, count=3)
    parts = [shard_scores(**shard_inputs(scans, i, 3), plan=plan, index=i, as_of=AS_OF) for i in range(2)]
    with pytest.raises(ValueError, match="2 shard results for a plan of 3 shards"):
        merge_scores(plan, parts, as_of=AS_OF)


def test_nothing_staged_plans_and_merges_to_empty_tables(tmp_path):
    scans = staged_scans(tmp_path, AS_OF)
    plan = plan_scores(**scans, as_of=AS_OF, count=2)
    parts = [shard_scores(**shard_inputs(scans, i, 2), plan=plan, index=i, as_of=AS_OF) for i in range(2)]
    tables = merge_scores(plan, parts, as_of=AS_OF)
    assert all(frame.is_empty() for frame in tables.values())


def test_customer_key_bounds_translate_id_order_into_code_order():
    keys = CustomerKeys(pl.Series("customer_id", ["b", "d", "f"]))
    assert [keys.bound(i) for i in ("a", "b", "c", "d", "f", "g")] == [-1, 0, 0, 1, 2, 2]


@pytest.mark.parametrize(("value", "expected"), [(None, 1), ("", 1), ("4", 4), (" 12 ", 12)])
def test_the_shard_count_comes_from_the_environment(value, expected):
    assert shard_count({} if value is None else {"CRM_SCORE_SHARDS": value}) == expected


@pytest.mark.parametrize("value", ["0", "-2", "four", "1.5"])
def test_a_bad_shard_count_is_refused(value):
    with pytest.raises(ValueError, match="CRM_SCORE_SHARDS must be a positive integer"):
        shard_count({"CRM_SCORE_SHARDS": value})


def test_the_lines_one_score_pass_holds_come_from_the_environment(tmp_path):
    env = {"CRM_HOME": str(tmp_path)}
    assert load_settings(env).score_shard_lines == 25_000_000
    assert load_settings(env | {"CRM_SCORE_SHARD_LINES": "1000"}).score_shard_lines == 1000
    with pytest.raises(ValueError, match="CRM_SCORE_SHARD_LINES must be a positive integer, got '0'"):
        load_settings(env | {"CRM_SCORE_SHARD_LINES": "0"})
