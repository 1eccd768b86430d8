"""RFM named segments and the 3x3x3 RFM option. Grid and rules: docs/metrics-segments.md."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from pipeline.scoring.rfm import scores

# Segment of each (R, FM) cell, R and FM on 1..5 (5 = best); rows are R = 5 down to R = 1,
# columns FM = 1..5. Every cell has exactly one segment, so the mapping is total and unambiguous.
SEGMENT_GRID = {
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cannot_lose"),
}
SEGMENTS = (
    "champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
    "about_to_sleep", "at_risk", "cannot_lose", "hibernating", "lost",
)
_SEGMENT_OF_CELL = {f"{r}{fm}": segment for r, row in SEGMENT_GRID.items() for fm, segment in enumerate(row, start=1)}


def fm_score(f_score: pl.Expr, m_score: pl.Expr) -> pl.Expr:
    """Mean of F and M rounded half up: a one-order big spender (F=1, M=5) ranks as FM 3, not as a small buyer."""
    return ((f_score.cast(pl.Int16) + m_score.cast(pl.Int16) + 1) // 2).cast(pl.Int16)


def rfm_segment(r_score: pl.Expr, f_score: pl.Expr, m_score: pl.Expr) -> pl.Expr:
    """Named segment from quintile scores 1..5 (null where a score is null)."""
    cell = pl.concat_str(r_score.cast(pl.String), fm_score(f_score, m_score).cast(pl.String))
    return cell.replace_strict(_SEGMENT_OF_CELL, default=None, return_dtype=pl.String)


def add_rfm_segments(scored: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame | pl.DataFrame:
    """Adds `rfm_segment` to a frame with r_score, f_score and m_score (rfm.rfm_scores with bins=5)."""
    return scored.with_columns(rfm_segment(pl.col("r_score"), pl.col("f_score"), pl.col("m_score")).alias("rfm_segment"))


def add_rfm3_scores(base: pl.LazyFrame | pl.DataFrame, *, cuts: Mapping[str, Sequence] | None = None
                    ) -> pl.LazyFrame | pl.DataFrame:
    """The 3x3x3 option: tercile scores 1..3 and cell (e.g. '323') beside the quintile ones.

    Same rank formula and tie rule as the quintiles (rfm.quantile_score with bins=3); `cuts` as
    in rfm.rfm_scores.
    """
    cut = (lambda name: None) if cuts is None else cuts.__getitem__
    return base.with_columns(
        scores("recency_days", bins=3, higher_is_better=False, cuts=cut("r3_score")).alias("r3_score"),
        scores("frequency", bins=3, cuts=cut("f3_score")).alias("f3_score"),
        scores("monetary_amount", bins=3, cuts=cut("m3_score")).alias("m3_score"),
    ).with_columns(pl.concat_str("r3_score", "f3_score", "m3_score").alias("rfm3_cell"))
