"""Our core customer scoring (RFM scores, pyramid tier, historic CLV) and its bare lower bound, both
from the same staged order-lines Parquet file, plus the check that pandas computes the same values.

Historic CLV is the value a customer has already brought: margin × net revenue to date. With the
shipped `clv.margin` of 1.0 it equals RFM's `monetary_amount`.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from pipeline.scoring.config import load_scoring_config
from pipeline.scoring.pyramid import assign_tiers, window_spend
from pipeline.scoring.rfm import completed_lines_as_of, rfm_base, rfm_scores
from pipeline.settings import load_settings

# Columns compared between implementations, and how.
EXACT = ("recency_days", "frequency", "r_score", "f_score", "m_score", "rfm_cell", "pyramid_tier")
AMOUNTS = ("monetary_amount", "window_spend_amount", "historic_clv_amount")


def _config():
    return load_scoring_config(load_settings().scoring_file)


def our_core_scores(path: str, as_of: date) -> pl.DataFrame:
    """The first steps of pipeline.scoring.kpi.customer_scores, composed from the same functions."""
    config = _config()
    completed = completed_lines_as_of(pl.scan_parquet(path), as_of)
    rfm = rfm_scores(rfm_base(completed, as_of))
    scored = (
        rfm.join(window_spend(completed, as_of, config.pyramid_window_days), on="customer_id", how="left")
        .with_columns(pl.col("window_spend_amount").fill_null(0.0))
        .collect()
    )
    tiers = assign_tiers(scored.select("customer_id", "window_spend_amount")).select("customer_id", "pyramid_tier")
    return scored.join(tiers, on="customer_id", how="left").with_columns(
        (pl.col("monetary_amount") * config.clv.margin).alias("historic_clv_amount")
    )


def lower_bound_rfm(path: str, as_of: date) -> pl.DataFrame:
    """One scan and one group-by: recency, frequency and monetary over the same completed lines."""
    completed = completed_lines_as_of(pl.scan_parquet(path), as_of)
    return (
        completed.group_by("customer_id")
        .agg(pl.col("ordered_at").max().alias("last_order_at"), pl.col("order_id").n_unique().alias("frequency"),
             pl.col("line_amount").sum().alias("monetary_amount"))
        .with_columns((pl.lit(as_of) - pl.col("last_order_at").dt.date()).dt.total_days().alias("recency_days"))
        .collect()
    )


def write_result(result, path: str) -> None:
    """Either implementation's customer rows, in the compared columns, to Parquet."""
    frame = result if isinstance(result, pl.DataFrame) else pl.from_pandas(result.reset_index())
    frame.select("customer_id", *(c for c in (*EXACT, *AMOUNTS) if c in frame.columns)).write_parquet(path)


def agreement(ours: Path, theirs: Path) -> dict:
    """Per compared column, how many customers differ (amounts: by more than 1e-6 relative)."""
    a, b = pl.read_parquet(ours), pl.read_parquet(theirs)
    joined = a.join(b, on="customer_id", how="full", suffix="_other", coalesce=True)
    out = {"customers": a.height, "customers_other": b.height, "unmatched": joined.height - a.join(b, on="customer_id").height}
    for column in EXACT:
        other = pl.col(f"{column}_other")
        out[column] = joined.select((pl.col(column).cast(pl.String) != other.cast(pl.String)).sum()).item()
    for column in AMOUNTS:
        other = pl.col(f"{column}_other")
        tolerance = 1e-6 * pl.max_horizontal(pl.col(column).abs(), pl.lit(1.0))
        out[column] = joined.select(((pl.col(column) - other).abs() > tolerance).sum()).item()
    return out
