"""Composes the daily score tables from the staged history, as of one date."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipeline.schemas import SCHEMAS
from pipeline.scoring.pyramid import assign_tiers, pyramid_summary, window_spend
from pipeline.scoring.rfm import completed_lines_as_of, rfm_base, rfm_scores


def staged_history(staging_dir: Path, kind: str, as_of: date) -> pl.LazyFrame:
    """Everything staged for batches up to the as-of date; the latest version of each business key wins."""
    files = sorted((staging_dir / kind).glob("batch_date=*/part.parquet"))
    files = [f for f in files if date.fromisoformat(f.parent.name.split("=", 1)[1]) <= as_of]
    if not files:
        return pl.LazyFrame()
    key = list(SCHEMAS[kind].business_key)
    return (
        pl.scan_parquet(files)
        .sort("batch_date", "source_row_number")
        .unique(subset=key, keep="last", maintain_order=True)
    )


def score_customers(order_lines: pl.LazyFrame, as_of: date, *, window_days: int = 365) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Returns (customer_score_daily rows, customer_pyramid_daily rows)."""
    completed = completed_lines_as_of(order_lines, as_of)
    rfm = rfm_scores(rfm_base(completed, as_of))
    spend = window_spend(completed, as_of, window_days)
    scored = rfm.join(spend, on="customer_id", how="left").with_columns(pl.col("window_spend_amount").fill_null(0.0)).collect()
    tiers = assign_tiers(scored.select("customer_id", "window_spend_amount"))
    customers = (
        scored.join(tiers.select("customer_id", "pyramid_tier"), on="customer_id")
        .with_columns(pl.lit(as_of).alias("as_of_date"))
        .sort("customer_id")
    )
    return customers, pyramid_summary(tiers, as_of)
