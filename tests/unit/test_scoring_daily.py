"""The daily composition (pipeline/scoring/daily.py) on small literal staged histories, and its wiring
through score_day/load_day into an embedded warehouse."""
from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.clv import rfm_summary
from pipeline.scoring.daily import SCORE_TABLES, daily_scores, staged_answers, staged_history, staged_inputs
from pipeline.scoring.guards import OK, clv_scores, model_summary
from pipeline.scoring.kpi import CUSTOMER_COLUMNS
from pipeline.scoring.lifecycle import lifecycle_stages
from pipeline.scoring.loyalty import retention
from pipeline.scoring.quality import model_quality
from pipeline.scoring.rfm import MONEY_UNITS, completed_lines_as_of, money_sum, purchase_days
from pipeline.settings import load_settings
from pipeline.tasks import load_day, score_day
from pipeline.warehouse import make_engine
from tests.support.staged import ANSWER, COMPLAINT, ORDER, SURVEY, at, write_staged

AS_OF = date(2025, 12, 31)
MODEL_SCORES = {"p_alive": "bgnbd_status", "expected_purchases": "expected_purchases_status",
                "expected_average_value": "expected_value_status", "clv_amount": "clv_status"}


def order(oid, line, customer, day, amount, *, status="completed", category="books", quantity=1, batch=None):
    return {"order_id": oid, "line_number": line, "customer_id": customer, "ordered_at": at(day), "category": category,
            "quantity": quantity, "line_amount": amount, "line_cost_amount": amount * 0.6, "status": status,
            "batch_date": batch or day}


@pytest.fixture
def staging(tmp_path):
    d = date
    write_staged(tmp_path, "orders", [
        order("o1", 1, "A", d(2025, 10, 1), 10.0), order("o1", 2, "A", d(2025, 10, 1), 5.0, category="toys"),
        order("o2", 1, "A", d(2025, 12, 20), 7.0),
        order("o3", 1, "B", d(2025, 12, 30), 3.0),
        order("o4", 1, "B", d(2025, 12, 30), 50.0, status="cancelled"),
        order("o5", 1, None, d(2025, 12, 1), 20.0),  # a guest: revenue, never a customer row
        # o2 re-exported with a corrected amount: the later batch wins
        order("o2", 1, "A", d(2025, 12, 20), 8.0, batch=d(2025, 12, 21)),
        # after the as-of date: invisible
        order("o6", 1, "C", d(2026, 1, 2), 99.0),
    ], ORDER)
    write_staged(tmp_path, "surveys", [
        {"response_id": "r1", "customer_id": "A", "responded_at": at(d(2025, 12, 21)), "per_reliability_score": 6.0,
         "exp_reliability_score": 7.0, "satisfaction_score": 6.0, "recommend_score": 9.0, "batch_date": d(2025, 12, 21)},
    ], SURVEY)
    write_staged(tmp_path, "survey_answers", [
        {"response_id": "r1", "customer_id": "A", "responded_at": at(d(2025, 12, 21)), "item": item, "measure": "per_reliability",
         "score": 6.0, "batch_date": d(2025, 12, 21)} for item in ("q1", "q2")
    ], ANSWER)
    write_staged(tmp_path, "complaints", [
        {"ticket_id": "t1", "customer_id": "B", "opened_at": at(d(2025, 12, 30), 8), "first_response_at": at(d(2025, 12, 30), 10),
         "resolved_at": None, "category": "delivery", "severity": "high", "status": "open", "batch_date": d(2025, 12, 30)},
    ], COMPLAINT)
    return tmp_path


def scores(staging, **absent) -> dict[str, pl.DataFrame]:
    inputs = staged_inputs(staging, AS_OF) | {name: None for name in absent}
    return daily_scores(**inputs, as_of=AS_OF, config=ScoringConfig())


def test_staged_history_keeps_the_latest_version_up_to_the_as_of_date(staging):
    orders = staged_history(staging, "orders", AS_OF).collect()
    assert orders.filter(pl.col("order_id") == "o2")["line_amount"].to_list() == [8.0]
    assert "o6" not in orders["order_id"].to_list()
    assert staged_history(staging, "orders", date(2025, 9, 30)).collect_schema().names() == []


def test_a_re_exported_survey_response_replaces_all_its_answers(staging):
    write_staged(staging, "survey_answers", [
        {"response_id": "r1", "customer_id": "A", "responded_at": at(date(2025, 12, 21)), "item": "q1",
         "measure": "per_reliability", "score": 5.0, "batch_date": date(2025, 12, 22)},
    ], ANSWER)
    answers = staged_inputs(staging, AS_OF)["survey_items"].collect()  # a scan: 44M answers at M
    assert answers.select("item", "score").rows() == [("q1", 5.0)]


def sorted_unique(staging, kind: str, key: list[str]) -> pl.LazyFrame:
    """The staged history as it was read before: every version sorted, the last of each key kept."""
    files = [f for f in sorted((staging / kind).glob("batch_date=*/part.parquet")) if f.parent.name <= f"batch_date={AS_OF}"]
    return pl.scan_parquet(files).sort("batch_date", "source_row_number").unique(subset=key, keep="last", maintain_order=True)


def collide_every_hash(monkeypatch) -> None:
    """Every key hashes alike: the repeated-key path must then resolve every row on the key itself."""
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *args, **kwargs: self.is_null().cast(pl.UInt64))


@pytest.mark.parametrize("collide", [False, True], ids=["hashes", "colliding-hashes"])
def test_staged_history_is_the_latest_version_of_each_key_without_a_sort(tmp_path, monkeypatch, collide):
    rng = np.random.default_rng(3)
    rows = []
    for i in range(400):  # keys repeat within a batch and across batches, some batches after the as-of date
        day = date(2025, 12, 1) + timedelta(days=int(rng.integers(0, 40)))
        rows.append(order(f"o{rng.integers(0, 120)}", int(rng.integers(1, 3)), f"C{rng.integers(0, 30)}", day, float(i),
                          batch=day))
    write_staged(tmp_path, "orders", rows, ORDER)
    expected = sorted_unique(tmp_path, "orders", ["order_id", "line_number"]).collect()
    if collide:
        collide_every_hash(monkeypatch)
    got = staged_history(tmp_path, "orders", AS_OF).collect()
    assert expected.height < 300 and got.equals(expected)


@pytest.mark.parametrize("collide", [False, True], ids=["hashes", "colliding-hashes"])
def test_staged_answers_keep_each_responses_latest_batch(tmp_path, monkeypatch, collide):
    rng = np.random.default_rng(4)
    rows = []
    for n in range(300):  # 100 responses, re-exported in later batches with fewer items, or twice in one
        response, day = f"r{rng.integers(0, 100)}", date(2025, 12, 1) + timedelta(days=int(rng.integers(0, 35)))
        rows += [{"response_id": response, "customer_id": "A", "responded_at": at(day), "item": f"q{k}",
                  "measure": "per_reliability", "score": float(n), "batch_date": day} for k in range(int(rng.integers(1, 4)))]
    write_staged(tmp_path, "survey_answers", rows, ANSWER)
    old = sorted_unique(tmp_path, "survey_answers", ["response_id", "item", "measure"])
    expected = old.filter(pl.col("batch_date") == pl.col("batch_date").max().over("response_id")).collect()
    if collide:
        collide_every_hash(monkeypatch)
    got = staged_answers(tmp_path, AS_OF).collect()
    key = ["response_id", "measure", "item"]
    assert expected["response_id"].n_unique() > 50 and got.sort(key).equals(expected.sort(key))


def test_scores_read_from_purchase_days_equal_those_from_the_lines():
    rows = simulated_orders()
    rows += [row | {"line_number": 2, "line_amount": 1.25} for row in rows[::3]]  # days with two lines
    lines = pl.DataFrame(rows, schema={**ORDER, "batch_date": pl.Date}, orient="row").lazy()
    completed = completed_lines_as_of(lines, AS_OF)
    days = purchase_days(completed).collect()
    assert days.height < completed.collect().height
    config = ScoringConfig()
    # The models' summary as it was computed from the lines: amounts in float millionths, per day.
    before = rfm_summary(completed.with_columns((pl.col("line_amount") * MONEY_UNITS).round().alias("units")),
                         customer_col="customer_id", at_col="ordered_at", amount_col="units", observation_end=AS_OF,
                         period_days=config.clv.period_days).with_columns(pl.col("monetary_value") / MONEY_UNITS)
    assert model_summary(completed, AS_OF, config.clv.period_days).equals(before)
    assert model_summary(days, AS_OF, config.clv.period_days).equals(before)
    assert lifecycle_stages(completed, AS_OF, config.lifecycle, days=days).equals(
        lifecycle_stages(completed, AS_OF, config.lifecycle))
    assert retention(days, AS_OF, 30).equals(retention(completed, AS_OF, 30))
    fits = clv_scores(completed, AS_OF, config.clv).fits
    assert clv_scores(days, AS_OF, config.clv).customers.equals(clv_scores(completed, AS_OF, config.clv).customers)
    assert model_quality(days, AS_OF, config.clv, fits).equals(model_quality(completed, AS_OF, config.clv, fits))


def test_the_full_score_set_from_a_small_history(staging):
    tables = scores(staging)
    assert tuple(tables) == SCORE_TABLES
    customers = tables["customer_score_daily"]
    assert customers.columns == CUSTOMER_COLUMNS
    assert customers["customer_id"].to_list() == ["A", "B"]  # no guest, nothing after the as-of date
    a, b = customers.row(0, named=True), customers.row(1, named=True)
    assert (a["frequency"], a["monetary_amount"], a["category_breadth"]) == (2, 23.0, 2)
    assert (b["frequency"], b["monetary_amount"], b["complaints"], b["open_complaints"]) == (1, 3.0, 1, 1)
    assert a["survey_responses"] == 1 and a["gap_reliability"] == -1.0 and a["service_status"] == OK
    assert b["service_status"].startswith("insufficient_data")
    # Two customers cannot identify BG/NBD or Gamma-Gamma: every model score says why it is missing.
    for score, status in MODEL_SCORES.items():
        assert customers[score].is_null().all()
        assert customers[status].str.starts_with("insufficient_data: ").all()

    pyramid = tables["customer_pyramid_daily"]
    assert pyramid["customers"].sum() == 2 and pyramid["revenue_share"].sum() == pytest.approx(1.0)

    kpi = tables["kpi_daily"].row(0, named=True)
    assert tables["kpi_daily"].height == 1 and kpi["as_of_date"] == AS_OF
    assert (kpi["completed_orders"], kpi["revenue_amount"], kpi["customers"]) == (4, 46.0, 2)  # guests count as revenue
    assert (kpi["survey_responses"], kpi["complaints"], kpi["orders_placed"]) == (1, 1, 5)
    alerts = tables["kpi_alert"]
    assert set(alerts["metric"]) >= {"complaints_per_1000_orders"} and (alerts["as_of_date"] == AS_OF).all()

    quality = tables["model_quality"]
    assert quality.select("model", "fit_role").rows() == [
        ("bgnbd", "scoring"), ("gamma_gamma", "scoring"), ("bgnbd", "calibration"), ("gamma_gamma", "calibration")]
    assert quality["status"].str.starts_with("insufficient_data: ").all()
    assert quality.filter(pl.col("fit_role") == "calibration")["check_status"].str.starts_with("insufficient_data: ").all()
    assert quality["observation_end"].to_list() == [AS_OF, AS_OF, AS_OF - timedelta(days=91), AS_OF - timedelta(days=91)]

    margins = tables["category_margin_daily"]
    assert dict(margins.select("category", "revenue_amount").rows()) == {"books": 41.0, "toys": 5.0}
    assert margins["gross_margin_rate"].to_list() == pytest.approx([0.4, 0.4])


def test_no_score_from_nothing_without_orders(staging):
    tables = scores(staging, orders=True)
    for table in ("customer_score_daily", "customer_pyramid_daily", "model_quality", "category_margin_daily"):
        assert tables[table].is_empty(), table
    kpis = tables["kpi_daily"]
    assert kpis.height == 1
    kpi = kpis.row(0, named=True)
    # What can be computed is there; order figures are not measured rather than zero.
    assert (kpi["complaints"], kpi["survey_responses"]) == (1, 1)
    assert kpi["completed_orders"] is None and kpi["revenue_amount"] is None and kpi["customers_new"] is None
    assert kpi["complaints_per_1000_orders"] is None


def test_surveys_only_and_nothing_at_all(staging):
    surveys_only = scores(staging, orders=True, complaints=True)
    kpi = surveys_only["kpi_daily"].row(0, named=True)
    assert kpi["survey_responses"] == 1 and kpi["complaints"] is None and kpi["nps"] == 100.0
    nothing = daily_scores(None, None, None, None, as_of=AS_OF)
    assert all(frame.is_empty() for frame in nothing.values())


def simulated_orders(n: int = 400, seed: int = 11) -> list[dict]:
    """A BG/NBD-like history over 2025: Poisson purchases, dropout after each, gamma-distributed spend."""
    rng = np.random.default_rng(seed)
    start, rows = date(2025, 1, 1), []
    for i in range(n):
        day, rate, drop, spend = int(rng.integers(0, 240)), rng.gamma(2.0, 1 / 40), rng.beta(1, 4), rng.gamma(4, 15)
        k = 0
        while day <= 364:
            k += 1
            rows.append(order(f"o{i}-{k}", 1, f"C{i:04d}", start + timedelta(days=day), round(rng.gamma(6, spend / 6), 2)))
            if rng.random() < drop:
                break
            day += 1 + int(rng.exponential(1 / rate))
    return rows


def test_models_fit_and_the_holdout_check_is_stored(tmp_path):
    write_staged(tmp_path, "orders", simulated_orders(), ORDER)
    tables = scores(tmp_path)
    customers = tables["customer_score_daily"]
    for score, status in MODEL_SCORES.items():
        # No silent nulls: a number exactly where the status is ok.
        assert (customers[score].is_not_null() == (customers[status] == OK)).all(), score
    assert (customers["bgnbd_status"] == OK).all() and customers["p_alive"].is_between(0, 1).all()
    quality = tables["model_quality"]
    assert (quality["status"] == OK).all() and quality["converged"].all()
    calibration = quality.filter(pl.col("fit_role") == "calibration")
    assert (calibration["check_status"] == OK).all()
    assert calibration["holdout_measure"].to_list() == ["repeat_purchases", "revenue"]
    assert (calibration["holdout_periods"] == 13.0).all()
    assert (calibration["holdout_actual"] > 0).all() and (calibration["holdout_predicted"] > 0).all()
    bgnbd = calibration.row(0, named=True)
    assert bgnbd["aggregate_relative_error"] == pytest.approx(bgnbd["holdout_predicted"] / bgnbd["holdout_actual"] - 1)
    assert bgnbd["top_decile_lift"] > 1  # the model ranks customers better than chance
    deciles = json.loads(calibration["decile_means"][1])
    assert len(deciles["predicted"]) == len(deciles["actual"]) == 10
    assert deciles["predicted"] == sorted(deciles["predicted"], reverse=True)
    # Re-running gives the same bytes (the warehouse re-run check relies on it).
    again = scores(tmp_path)
    for table in SCORE_TABLES:
        assert again[table].equals(tables[table]), table


def test_score_day_writes_every_table_and_load_day_replaces_its_partitions(staging, tmp_path):
    home = tmp_path / "home"
    (home / "staging").parent.mkdir(parents=True, exist_ok=True)
    (home / "staging").symlink_to(staging)
    settings = load_settings({"CRM_HOME": str(home), "CRM_PII_SALT": "salt"})
    scored = score_day(AS_OF, settings)
    assert json.loads(json.dumps(scored)) == scored  # XCom: paths and counts only
    assert scored["rows"]["customer_score_daily"] == 2 and scored["rows"]["kpi_daily"] == 1
    for _ in range(2):  # a re-run replaces, never appends
        loaded = load_day(AS_OF, [], scored, settings)
    assert {t: loaded[t] for t in SCORE_TABLES} == scored["rows"]
    engine = make_engine(settings.warehouse_url)
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in SCORE_TABLES}
    engine.dispose()
    assert counts == scored["rows"]


def test_the_scoring_config_path_comes_from_the_environment(tmp_path):
    env = {"CRM_HOME": str(tmp_path), "CRM_PII_SALT": "salt"}
    assert load_settings(env).scoring_file.name == "scoring.yml"
    assert str(load_settings(env | {"CRM_SCORING_CONFIG": "/etc/crm/scoring.yml"}).scoring_file) == "/etc/crm/scoring.yml"


def test_money_sums_keep_sub_cent_amounts_and_do_not_depend_on_order():
    amounts = pl.DataFrame({"a": [0.001, 15.299999999999999, 0.1, 0.2] * 1000})
    total = amounts.select(money_sum("a")).item()
    assert total == 15601.0  # 1000 × (0.001 + 15.3 + 0.1 + 0.2), exactly
    assert amounts.reverse().select(money_sum("a")).item() == total
