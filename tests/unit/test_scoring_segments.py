"""RFM named segments and tercile scores, on hand-scored literal frames."""
import polars as pl
import pytest

from pipeline.scoring.segments import SEGMENTS, add_rfm3_scores, add_rfm_segments, fm_score


def segment_of(r: int | None, f: int | None, m: int | None) -> str | None:
    frame = pl.DataFrame({"r_score": [r], "f_score": [f], "m_score": [m]},
                         schema={c: pl.Int16 for c in ("r_score", "f_score", "m_score")})
    return add_rfm_segments(frame)["rfm_segment"][0]


@pytest.mark.parametrize(("f", "m", "fm"), [(1, 1, 1), (1, 2, 2), (2, 3, 3), (1, 5, 3), (4, 5, 5), (5, 5, 5)])
def test_fm_is_the_mean_of_f_and_m_rounded_half_up(f, m, fm):
    out = pl.DataFrame({"f": [f], "m": [m]}).select(fm_score(pl.col("f"), pl.col("m")).alias("fm"))["fm"][0]
    assert out == fm


@pytest.mark.parametrize(
    ("r", "f", "m", "segment"),
    [
        (5, 5, 5, "champions"),
        (5, 1, 1, "new"),
        (4, 1, 1, "promising"),
        (4, 1, 2, "potential_loyalist"),  # FM = 2
        (4, 5, 4, "loyal"),  # FM = 5
        (3, 3, 3, "need_attention"),
        (3, 1, 2, "about_to_sleep"),
        (2, 2, 1, "hibernating"),
        (1, 1, 5, "at_risk"),  # a lapsed one-order big spender: FM = 3
        (1, 5, 5, "cannot_lose"),
        (1, 1, 1, "lost"),
    ],
)
def test_named_segments_follow_the_documented_grid(r, f, m, segment):
    assert segment_of(r, f, m) == segment


def test_every_cell_has_a_segment_and_every_segment_a_cell():
    cells = [(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)]
    found = {segment_of(*cell) for cell in cells}
    assert found == set(SEGMENTS)


def test_missing_score_gives_no_segment():
    assert segment_of(None, 3, 3) is None


def test_tercile_scores_use_the_quintile_rank_rule():
    base = pl.DataFrame({
        "customer_id": list("abcdef"),
        "recency_days": [0, 10, 20, 30, 40, 50],
        "frequency": [1, 1, 1, 1, 2, 3],
        "monetary_amount": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
    })
    out = add_rfm3_scores(base)
    # score = 1 + floor(3 (rank - 1) / 6); recency ranked with the most recent best.
    assert out["r3_score"].to_list() == [3, 3, 2, 2, 1, 1]
    # The four tied one-order customers take rank 1; frequency 2 has rank 5 -> 3, so score 2 is skipped.
    assert out["f3_score"].to_list() == [1, 1, 1, 1, 3, 3]
    assert out["m3_score"].to_list() == [1, 1, 2, 2, 3, 3]
    assert out["rfm3_cell"].to_list() == ["311", "311", "212", "212", "133", "133"]


def test_tercile_scores_do_not_depend_on_row_order():
    base = pl.DataFrame({
        "customer_id": list("abcdefg"),
        "recency_days": [5, 5, 1, 9, 3, 3, 7],
        "frequency": [2, 1, 1, 4, 2, 2, 1],
        "monetary_amount": [5.0, 5.0, 8.0, 1.0, 9.0, 2.0, 2.0],
    })
    forward = add_rfm3_scores(base).sort("customer_id")
    backward = add_rfm3_scores(base.reverse()).sort("customer_id")
    assert forward.equals(backward)
