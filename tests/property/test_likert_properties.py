"""Property-based tests of Likert rescaling (pipeline/standardize.py; docs/sources.md, docs/metrics-service.md).

Answers are mapped linearly from each item's configured range onto its measure's common scale (1-7;
the recommend item 0-10). An answer inside its range must land inside the common scale, the ends of
the range on the ends of the scale, in the same order; out-of-range answers are flagged and left out of
the measure's mean.
"""
from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import standardize as std
from pipeline.schemas import LIKERT_MEASURES, common_scale

pytestmark = pytest.mark.property

FAST = settings(max_examples=150, deadline=None)
FRAMES = settings(max_examples=50, deadline=None)  # whole survey frames: slower to draw
SCALES = sorted({common_scale(m) for m in LIKERT_MEASURES})  # the common scales staging maps onto


@st.composite
def answer_ranges(draw) -> tuple[float, float]:
    """Configured answer ranges (likert.scale / likert.ranges): whole numbers as most surveys use,
    and decimal ends, which the config accepts (any low < high)."""
    decimals = draw(st.sampled_from([0, 0, 1, 2]))
    low = round(draw(st.floats(-20, 100)), decimals)
    high = round(low + draw(st.floats(0.01, 100)), decimals)
    if not low < high:
        high = low + 1
    return float(low), float(high)


@st.composite
def answers_within(draw, answer_range: tuple[float, float], max_size: int = 20) -> list[float]:
    """The ends of the range, points on its whole and half steps, and arbitrary values in between."""
    low, high = answer_range
    steps = [low + k / 2 for k in range(int((high - low) * 2) + 1)][:200]
    answer = st.one_of(st.sampled_from([low, high]), st.sampled_from(steps), st.floats(low, high))
    return draw(st.lists(answer, min_size=1, max_size=max_size))


def rescaled(values: list[float], answer_range, scale) -> list[float]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.Float64})
    return frame.select(std.rescale(pl.col("v"), answer_range, scale).alias("v"))["v"].to_list()


@FAST
@given(answer_ranges(), st.sampled_from(SCALES), st.data())
def test_rescaled_answers_stay_on_the_common_scale(answer_range, scale, data):
    values = sorted(data.draw(answers_within(answer_range)))
    out = rescaled([*values, *answer_range], answer_range, scale)
    low, high = scale
    outside = [(a, v) for a, v in zip([*values, *answer_range], out) if not low <= v <= high]
    assert not outside, (answer_range, scale, outside)
    assert out[-2] == low  # the ends of the answer range are the ends of the scale (the top one up to
    assert out[-1] == pytest.approx(high, rel=1e-15)  # rounding: Polars divides by a scalar's reciprocal)
    assert out[:-2] == sorted(out[:-2])  # and the order of the answers is kept


@FAST
@given(answer_ranges(), st.sampled_from(SCALES), st.floats(-1e3, 1e3))
def test_rescaling_is_the_documented_linear_map(answer_range, scale, value):
    """Inside or outside the range, the map is a + (v - lo)(b - a)/(hi - lo); only rounding may differ."""
    (lo, hi), (a, b) = answer_range, scale
    (out,) = rescaled([value], answer_range, scale)
    assert out == pytest.approx(a + (value - lo) * (b - a) / (hi - lo), rel=1e-12, abs=1e-12)


ITEM_RANGES = [(1.0, 5.0), (1.0, 7.0), (0.0, 10.0), (1.0, 10.0), (-3.0, 3.0), (0.0, 2.7), (0.5, 5.5)]


@st.composite
def surveys(draw):
    """A frame of answers to items grouped into measures, with missing and out-of-range answers."""
    measures = draw(st.lists(st.sampled_from(LIKERT_MEASURES), min_size=1, max_size=3, unique=True))
    items = {m: [f"{m}_q{i}" for i in range(draw(st.integers(1, 3)))] for m in measures}
    ranges = {i: draw(st.sampled_from(ITEM_RANGES)) for v in items.values() for i in v}
    n = draw(st.integers(1, 12))

    def answer(lo, hi):
        return st.one_of(st.none(), st.sampled_from([lo, hi, lo - 1, hi + 0.5]), st.floats(lo, hi), st.floats(lo - 50, hi + 50))

    columns = {i: draw(st.lists(answer(*ranges[i]), min_size=n, max_size=n)) for i in ranges}
    frame = pl.DataFrame(columns, schema={i: pl.Float64 for i in columns})
    return frame, items, ranges, {m: common_scale(m) for m in measures}


@FRAMES
@given(surveys())
def test_measure_scores_average_the_in_range_answers_on_the_common_scale(survey):
    frame, items, ranges, scales = survey
    out = std.likert_measures(frame, items, ranges, scales)
    for row, answers in zip(out.iter_rows(named=True), frame.iter_rows(named=True)):
        in_range = {i: v is None or ranges[i][0] <= v <= ranges[i][1] for i, v in answers.items()}
        assert row["are_likert_answers_in_range"] == all(in_range.values())
        for measure, item_list in items.items():
            (a, b), score = scales[measure], row[f"{measure}_score"]
            kept = [
                a + (answers[i] - ranges[i][0]) * (b - a) / (ranges[i][1] - ranges[i][0])
                for i in item_list if answers[i] is not None and in_range[i]
            ]
            if not kept:
                assert score is None  # nothing answered in range: no score, not a made-up one
                continue
            assert a <= score <= b, (measure, score)
            assert score == pytest.approx(math.fsum(kept) / len(kept), rel=1e-12, abs=1e-12)


@FRAMES
@given(surveys())
def test_answer_rows_of_accepted_responses_stay_on_the_common_scale(survey):
    """likert_answers runs on accepted responses, whose answers are all in range (the rest are quarantined)."""
    frame, items, ranges, scales = survey
    accepted = std.likert_measures(frame, items, ranges, scales).filter("are_likert_answers_in_range")
    accepted = accepted.with_row_index("response_id").with_columns(pl.col("response_id").cast(pl.String))
    answers = std.likert_answers(accepted, items, ranges, scales, ["response_id"])
    expected = sum(accepted[i].is_not_null().sum() for v in items.values() for i in v)
    assert answers.height == expected  # one row per answered item, none for unanswered ones
    if expected:
        for measure, (a, b) in scales.items():
            scores = answers.filter(pl.col("measure") == measure)["score"]
            assert scores.is_between(a, b).all(), (measure, scores.to_list())
