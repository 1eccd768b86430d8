"""Runs crm_daily for real (crm run -> Airflow dag.test()) on generated data, per warehouse."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from tests.conftest import SAMPLE_END, read_table, run_crm, table_checksum

pytestmark = pytest.mark.airflow
MID = date(2025, 12, 20)
TABLES = ["fct_order_line", "fct_survey_response", "fct_complaint", "dim_customer", "customer_pii",
          "customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "model_quality",
          "category_margin_daily", "quarantine", "etl_batch", "dq_validation_result"]
# Model-based scores and the status column that says why one is missing.
MODEL_SCORES = {"p_alive": "bgnbd_status", "churn_risk_band": "bgnbd_status",
                "expected_purchases": "expected_purchases_status", "expected_average_value": "expected_value_status",
                "clv_amount": "clv_status"}


def sample_rows(sample_dir, kind: str, until: date) -> int:
    files = [p for p in (sample_dir / kind).iterdir() if date.fromisoformat(p.stem[-10:]) <= until]
    if kind == "complaints":
        return sum(sum(1 for _ in f.open(encoding="utf-8")) for f in files)
    return sum(pl.read_csv(f, infer_schema=False).height for f in files)


def test_daily_runs_load_incrementally_and_reruns_change_nothing(crm_home, airflow_home, warehouse_url, sample_dir):
    first = run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", MID.isoformat())
    assert "Customer pyramid as of 2025-12-20" in first.stdout

    batches = read_table(warehouse_url, "SELECT * FROM etl_batch")
    # The first run on an empty warehouse takes all history up to ds, and nothing later.
    assert batches["batch_date"].max() == MID
    assert (batches["run_date"] == MID).all()
    for kind in ("customers", "orders", "surveys", "complaints"):
        assert batches.filter(pl.col("source") == kind)["raw_rows"].sum() == sample_rows(sample_dir, kind, MID)
    # Nothing lost: every batch reconciles, and the quarantine table holds exactly the rejected rows.
    assert (batches["raw_rows"] == batches["accepted_rows"] + batches["quarantined_rows"]).all()
    quarantined = read_table(warehouse_url, "SELECT source, count(*) AS n FROM quarantine GROUP BY source")
    assert quarantined["n"].sum() == batches["quarantined_rows"].sum() > 0
    assert read_table(warehouse_url, "SELECT count(*) AS n FROM fct_order_line")["n"][0] == (
        batches.filter(pl.col("source") == "orders")["accepted_rows"].sum()
    )

    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", SAMPLE_END.isoformat())
    batches = read_table(warehouse_url, "SELECT * FROM etl_batch")
    # The later run loaded only the days after the watermark; earlier batches keep their first run date.
    assert set(batches.filter(pl.col("batch_date") <= MID)["run_date"]) == {MID}
    assert set(batches.filter(pl.col("batch_date") > MID)["run_date"]) == {SAMPLE_END}
    before = {t: table_checksum(warehouse_url, t) for t in TABLES}

    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", SAMPLE_END.isoformat())
    assert {t: table_checksum(warehouse_url, t) for t in TABLES} == before

    scores = read_table(warehouse_url, "SELECT * FROM customer_score_daily WHERE as_of_date = :d", d=SAMPLE_END)
    assert scores.height > 0 and scores["r_score"].is_between(1, 5).all()
    tiers = read_table(warehouse_url, "SELECT pyramid_tier, customers FROM customer_pyramid_daily WHERE as_of_date = :d", d=SAMPLE_END)
    assert dict(tiers.rows())["vip"] >= 1
    assert sum(dict(tiers.rows()).values()) == scores.height
    # No silent nulls: every customer has each model-based score, or a status saying why not.
    for score, status in MODEL_SCORES.items():
        scored = scores[score].is_not_null() & (scores[status] == "ok")
        explained = scores[score].is_null() & scores[status].str.contains(r"^(insufficient_data|failed): .+")
        assert (scored | explained).all(), (score, scores.filter(~(scored | explained)).select("customer_id", score, status))
    kpis = read_table(warehouse_url, "SELECT * FROM kpi_daily ORDER BY as_of_date")
    assert kpis["as_of_date"].to_list() == [MID, SAMPLE_END] and kpis["customers"][1] == scores.height
    quality = read_table(warehouse_url, "SELECT model, fit_role FROM model_quality WHERE as_of_date = :d", d=SAMPLE_END)
    assert quality.height == 4


def test_bi_tables_carry_no_clear_pii(crm_home, airflow_home, warehouse_url):
    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", SAMPLE_END.isoformat())
    dim = read_table(warehouse_url, "SELECT * FROM dim_customer")
    assert "email" not in dim.columns and "phone" not in dim.columns
    assert dim["email_hash"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
    pii = read_table(warehouse_url, "SELECT email, phone FROM customer_pii")
    assert pii["email"].drop_nulls().str.contains("@").all()
    assert pii["phone"].drop_nulls().str.starts_with("+").all()
    quarantine = read_table(warehouse_url, "SELECT raw_record FROM quarantine")
    for email in pii["email"].drop_nulls().to_list()[:200]:
        assert not quarantine["raw_record"].str.contains(email, literal=True).any()
