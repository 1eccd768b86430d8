"""Sharded scoring: the customers split by a hash of their key into N shards, each scored on its own
(on Airflow, one mapped task per shard, on any worker), with the same rows as one daily_scores run.

    plan = plan_scores(**staged_scans(...), as_of=d, config=c)        # once, over the whole history
    part = shard_scores(**shard_inputs(staged_scans(...), i, n), plan=plan, as_of=d, config=c)   # per shard
    tables = merge_scores(plan, [part, ...], as_of=d, config=c)       # the daily_scores tables

A customer's row depends on the other customers only through population-wide scores, and the plan
computes those once, over everyone:

* the R, F, M quintiles, the 3x3x3 terciles and the tenure quintiles: with the 'min' tie rule a
  quantile score is a step function of the value, so the plan keeps each score's steps
  (rfm.quantile_cuts) and a shard scores by them (rfm.score_by_cuts);
* the pyramid tiers, by position in spend order: the plan keeps each tier's last spender
  (pyramid.tier_cuts); a customer is in the first tier whose last spender it does not come after;
* the CLV models, fitted on every customer's summary: the plan fits them and keeps every customer's
  CLV scores (a few vectorised formulas on the summary the fit needs anyway);
* whatever kpi_daily, model_quality and category_margin_daily take from the whole history.

The plan reads the history through lazy scans, so its aggregates stream (Polars' streaming engine)
and never hold all order lines; a shard holds only its own customers' lines. The merge concatenates
the shards' rows and finishes the tables from the plan (daily.score_tables).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.complaints import COMPLAINT_SCHEMA
from pipeline.scoring.daily import (
    Frame,
    HistoryScores,
    history_scores,
    keyed_inputs,
    present_sources,
    score_tables,
)
from pipeline.scoring.guards import FIT_SCHEMA, ClvScores
from pipeline.scoring.kpi import ORDER_LINE_SCHEMA, as_input, customer_scores
from pipeline.scoring.lifecycle import days_since
from pipeline.scoring.pyramid import tier_cuts, window_spend
from pipeline.scoring.rfm import completed_lines_as_of, purchase_days, quantile_cuts, rfm_base
from pipeline.scoring.service import ITEM_SCHEMA, RESPONSE_SCHEMA, company_service

# Polars' hash is stable for one Polars version: every worker of a deployment runs the locked one.
SHARD_SEED = 20_251_231
# The population-wide quantile scores: score column -> (value column, bins, higher is better), as
# rfm.rfm_scores, segments.add_rfm3_scores and loyalty.with_loyalty_index score them.
QUANTILE_SCORES = {
    "r_score": ("recency_days", 5, False), "f_score": ("frequency", 5, True), "m_score": ("monetary_amount", 5, True),
    "r3_score": ("recency_days", 3, False), "f3_score": ("frequency", 3, True), "m3_score": ("monetary_amount", 3, True),
    "tenure_score": ("tenure_days", 5, True),
}


def shard_of(customer_id: pl.Expr, count: int) -> pl.Expr:
    """The shard (0..count-1) of a customer key."""
    return (customer_id.hash(seed=SHARD_SEED) % count).cast(pl.Int64)


def in_shard(frame: pl.LazyFrame, index: int, count: int) -> pl.LazyFrame:
    """The rows of the shard's customers (guests, who have no customer row, are in none)."""
    if not 0 <= index < count:
        raise ValueError(f"shard {index} of {count} does not exist")
    return frame.filter(pl.col("customer_id").is_not_null() & (shard_of(pl.col("customer_id"), count) == index))


@dataclass(frozen=True)
class Plan:
    """What every shard needs and none can compute alone (see the module docstring)."""

    history: HistoryScores
    cuts: dict  # score column -> rfm.quantile_cuts; "pyramid_tier" -> pyramid.tier_cuts
    count: int


def population_cuts(completed: pl.LazyFrame, as_of: date, config: ScoringConfig) -> dict:
    """The cut points of the population-wide scores over every customer with a completed purchase,
    from the same per-customer values customer_scores scores (tenure: the lifecycle's days since
    the first purchase)."""
    population = (
        rfm_base(completed, as_of)
        .join(window_spend(completed, as_of, config.pyramid_window_days), on="customer_id", how="left")
        .with_columns(pl.col("window_spend_amount").fill_null(0.0), pl.col("first_order_at").dt.date().alias("first_day"))
        .with_columns(days_since("first_day", as_of).alias("tenure_days"))
        .select("customer_id", *{column for column, _, _ in QUANTILE_SCORES.values()}, "window_spend_amount")
        .collect(engine="streaming")
    )
    cuts = {name: quantile_cuts(population[column], bins=bins, higher_is_better=better)
            for name, (column, bins, better) in QUANTILE_SCORES.items()}
    return cuts | {"pyramid_tier": tier_cuts(population.select("customer_id", "window_spend_amount"))}


def plan_scores(
    orders: pl.LazyFrame | None, surveys: Frame, survey_items: Frame, complaints: Frame, *, as_of: date,
    config: ScoringConfig = ScoringConfig(), count: int = 1, fits: dict | None = None,
) -> Plan:
    """The history-wide scores and the cut points, from the staged scans (daily.staged_scans). The
    order lines stay a scan: every step over them is a streamed aggregate."""
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, got {count}")
    present = present_sources(orders, surveys, complaints)
    surveys = as_input(surveys, RESPONSE_SCHEMA).collect().rechunk()  # rechunk: see daily.staged_inputs
    complaints = as_input(complaints, COMPLAINT_SCHEMA).collect()
    service = company_service(surveys, as_input(survey_items, ITEM_SCHEMA), as_of, config.service)
    lines = as_input(orders, ORDER_LINE_SCHEMA)
    completed = completed_lines_as_of(lines, as_of)
    days = purchase_days(completed).collect(engine="streaming")
    history = history_scores(lines, surveys, complaints, days, service, as_of=as_of, config=config, fits=fits,
                             present=present)
    return Plan(history, population_cuts(completed, as_of, config), count)


def shard_inputs(scans: Mapping[str, pl.LazyFrame | None], index: int, count: int) -> dict[str, pl.DataFrame | None]:
    """One shard's orders, surveys and complaints, read from the staged scans (daily.staged_scans)."""
    return {name: None if scans.get(name) is None else in_shard(scans[name], index, count).collect()
            for name in ("orders", "surveys", "complaints")}


def shard_scores(orders: Frame, surveys: Frame, complaints: Frame, *, plan: Plan, index: int, as_of: date,
                 config: ScoringConfig = ScoringConfig()) -> pl.DataFrame:
    """The customer_score_daily rows of one shard's customers (its shard_inputs), as one run over
    every customer would score them."""
    clv = in_shard(plan.history.clv.customers.lazy(), index, plan.count).collect()
    keyed = keyed_inputs(orders, surveys, complaints, as_of, extra=[clv])
    cuts = plan.cuts | {"pyramid_tier": [None if cut is None else (cut[0], keyed.keys.bound(cut[1]))
                                         for cut in plan.cuts["pyramid_tier"]]}  # in this shard's codes
    customers = customer_scores(keyed.lines, keyed.surveys, keyed.complaints, as_of, config, days=keyed.days,
                                clv=ClvScores(keyed.extra[0], pl.DataFrame(schema=FIT_SCHEMA)), cuts=cuts)
    return keyed.keys.decode(customers)


def merge_scores(plan: Plan, parts: Sequence[pl.DataFrame], *, as_of: date, config: ScoringConfig = ScoringConfig(),
                 kpi_history: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """The score tables (daily.SCORE_TABLES) from the plan and every shard's rows."""
    if len(parts) != plan.count:
        raise ValueError(f"{len(parts)} shard results for a plan of {plan.count} shards")
    customers = pl.concat(parts).sort("customer_id")
    return score_tables(plan.history, customers, as_of=as_of, config=config, kpi_history=kpi_history)


def scores_in_shards(scans: Mapping[str, pl.LazyFrame | None], *, count: int, as_of: date,
                     config: ScoringConfig = ScoringConfig(), fits: dict | None = None,
                     kpi_history: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """The daily_scores tables in one process, one shard of the customers in memory at a time: how
    a history too large to hold is scored without a sharded DAG. `scans`: daily.staged_scans."""
    plan = plan_scores(**scans, as_of=as_of, config=config, count=count, fits=fits)
    parts = [shard_scores(**shard_inputs(scans, index, count), plan=plan, index=index, as_of=as_of, config=config)
             for index in range(count)]
    return merge_scores(plan, parts, as_of=as_of, config=config, kpi_history=kpi_history)


def plan_frames(plan: Plan) -> dict[str, pl.DataFrame]:
    """The plan as frames, to store between the plan, shard and merge tasks (plan_of reads them)."""
    history = plan.history
    frames = {"clv_customers": history.clv.customers, "clv_fits": history.clv.fits,
              "model_quality": history.model_quality, "categories": history.categories,
              **{f"company_{name}": frame for name, frame in history.company.items()}}
    meta = {"present": history.present, "cuts": plan.cuts, "count": plan.count}
    return frames | {"meta": pl.DataFrame({"plan": [json.dumps(meta)]})}


def plan_of(frames: Mapping[str, pl.DataFrame]) -> Plan:
    """The plan from its plan_frames."""
    meta = json.loads(frames["meta"]["plan"][0])
    cuts = meta["cuts"] | {"pyramid_tier": [None if cut is None else tuple(cut) for cut in meta["cuts"]["pyramid_tier"]]}
    company = {name.removeprefix("company_"): frame for name, frame in frames.items() if name.startswith("company_")}
    history = HistoryScores(meta["present"], ClvScores(frames["clv_customers"], frames["clv_fits"]),
                            frames["model_quality"], frames["categories"], company)
    return Plan(history, cuts, meta["count"])
