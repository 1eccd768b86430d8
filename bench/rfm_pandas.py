"""The baseline: RFM, the customer pyramid and historic CLV as a data analyst would write them in
pandas. Idiomatic and vectorized (read_parquet, boolean masks, groupby/agg, rank, sort_values,
np.select), with the rules of docs/metrics.md, so it returns the same values as our scoring.
"""
from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from pipeline.scoring.pyramid import TIERS
from pipeline.scoring.config import load_scoring_config
from pipeline.settings import load_settings

COLUMNS = ["customer_id", "order_id", "ordered_at", "quantity", "line_amount", "status"]


def quintile(values: pd.Series, *, higher_is_better: bool = True, bins: int = 5) -> pd.Series:
    """1 + floor(bins (rank - 1) / n), rank 1 = worst, ties share the lowest rank."""
    rank = values.rank(method="min", ascending=higher_is_better)
    return (1 + (bins * (rank - 1) // len(values))).clip(1, bins).astype("int16")


def pyramid_tiers(spend: pd.Series) -> pd.Series:
    """VIP / key / ordinary / small by position in window spend (ties by customer id); no spend: inactive."""
    spenders = spend[spend > 0].rename("spend").reset_index().sort_values(["spend", "customer_id"],
                                                                          ascending=[False, True])
    position = np.arange(1, len(spenders) + 1)
    cutoffs = [math.ceil(share * len(spenders)) for _, share in TIERS]
    tier = np.select([position <= c for c in cutoffs], [name for name, _ in TIERS], default="inactive")
    return pd.Series(tier, index=spenders["customer_id"]).reindex(spend.index, fill_value="inactive")


def pandas_core_scores(path: str, as_of: date) -> pd.DataFrame:
    config = load_scoring_config(load_settings().scoring_file)
    lines = pd.read_parquet(path, columns=COLUMNS)
    end = pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1)
    completed = lines[(lines["status"] == "completed") & (lines["ordered_at"] < end) & (lines["quantity"] > 0)
                      & lines["customer_id"].notna()]

    rfm = completed.groupby("customer_id").agg(
        first_order_at=("ordered_at", "min"), last_order_at=("ordered_at", "max"),
        frequency=("order_id", "nunique"), monetary_amount=("line_amount", "sum"),
    )
    rfm["recency_days"] = (pd.Timestamp(as_of, tz="UTC") - rfm["last_order_at"].dt.floor("D")).dt.days
    rfm["r_score"] = quintile(rfm["recency_days"], higher_is_better=False)
    rfm["f_score"] = quintile(rfm["frequency"])
    rfm["m_score"] = quintile(rfm["monetary_amount"])
    rfm["rfm_cell"] = rfm["r_score"].astype(str) + rfm["f_score"].astype(str) + rfm["m_score"].astype(str)

    window_start = pd.Timestamp(as_of - timedelta(days=config.pyramid_window_days - 1), tz="UTC")
    in_window = completed[completed["ordered_at"] >= window_start]
    rfm["window_spend_amount"] = in_window.groupby("customer_id")["line_amount"].sum().reindex(rfm.index, fill_value=0.0)
    rfm["pyramid_tier"] = pyramid_tiers(rfm["window_spend_amount"])
    rfm["historic_clv_amount"] = rfm["monetary_amount"] * config.clv.margin
    return rfm
