"""The shipped source mappings on the real public exports in ../shared/data, through `crm run`."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import polars as pl
import pytest

from pipeline.settings import PROJECT_ROOT
from tests.conftest import read_table, run_crm

pytestmark = pytest.mark.airflow
DATA = Path(os.environ.get("CRM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
EXAMPLES = PROJECT_ROOT / "config" / "sources" / "examples"


def run_example(tmp_path, airflow_home, name: str, ds: str) -> str:
    assert DATA.is_dir(), f"the shared datasets are expected at {DATA} (set CRM_SHARED_DATA)"
    home = tmp_path / "crm"
    url = f"duckdb:///{home / 'warehouse.duckdb'}"
    os.environ["CRM_DATA"] = str(DATA)  # the examples' base_dir; inherited by `crm run`
    run_crm(home, airflow_home, url, "run", "--sources", str(EXAMPLES / f"{name}.yml"), "--ds", ds)
    return url


def reconciled(url: str, source: str) -> dict[str, int]:
    batches = read_table(url, "SELECT * FROM etl_batch WHERE source = :s", s=source)
    assert (batches["raw_rows"] == batches["accepted_rows"] + batches["quarantined_rows"]).all()
    quarantined = read_table(url, "SELECT count(*) AS n FROM quarantine WHERE source = :s", s=source)["n"][0]
    assert quarantined == batches["quarantined_rows"].sum()
    return {"raw": batches["raw_rows"].sum(), "accepted": batches["accepted_rows"].sum(), "quarantined": quarantined}


def test_online_retail_every_row_is_accounted_for(tmp_path, airflow_home):
    raw = pl.read_csv(gzip.decompress((DATA / "online_retail" / "online_retail_uci352.csv.gz").read_bytes()),
                      infer_schema=False)
    url = run_example(tmp_path, airflow_home, "online_retail", "2011-12-09")
    counts = reconciled(url, "orders")
    assert counts["raw"] == raw.height == 541_909
    lines = read_table(url, "SELECT customer_id, status, quantity FROM fct_order_line")
    assert lines.height == counts["accepted"]
    quarantine = read_table(url, "SELECT reason_code, raw_record FROM quarantine")
    assert set(quarantine["reason_code"]) <= {"exact_duplicate", "negative_quantity_without_return", "out_of_range"}
    record = quarantine["raw_record"].str.json_decode(pl.Struct({"InvoiceNo": pl.String, "CustomerID": pl.String}))
    # Guests (no CustomerID) are kept as the config says, or quarantined for another reason: none is lost.
    no_customer = raw["CustomerID"].is_null().sum()
    assert no_customer == 135_080
    assert lines["customer_id"].is_null().sum() + record.struct.field("CustomerID").is_null().sum() == no_customer
    # Cancellations (invoice prefix C) are accepted as cancelled lines with their negative quantities.
    cancelled = raw["InvoiceNo"].str.starts_with("C").sum()
    quarantined_c = record.struct.field("InvoiceNo").str.starts_with("C").sum()
    assert (lines["status"] == "cancelled").sum() + quarantined_c == cancelled
    assert (lines.filter(pl.col("status") == "cancelled")["quantity"] < 0).all()
    scores = read_table(url, "SELECT count(*) AS n FROM customer_score_daily")["n"][0]
    buyers = lines.filter((pl.col("status") == "completed") & (pl.col("quantity") > 0))["customer_id"].drop_nulls().n_unique()
    assert scores == buyers > 4000


def test_cfpb_complaints_map_without_customers(tmp_path, airflow_home):
    url = run_example(tmp_path, airflow_home, "cfpb_complaints", "2016-09-30")
    assert reconciled(url, "complaints") == {"raw": 349, "accepted": 349, "quarantined": 0}
    tickets = read_table(url, "SELECT * FROM fct_complaint")
    assert tickets["customer_id"].is_null().all() and tickets["is_timely_response"].is_not_null().all()
    assert set(tickets["status"]) == {"open", "closed"}
    # There are no orders: no customer is scored from nothing.
    assert read_table(url, "SELECT count(*) AS n FROM customer_score_daily")["n"][0] == 0
    results = read_table(url, "SELECT * FROM dq_validation_result")
    assert results["is_success"].all() and set(results["run_id"]) == {"complaints-2016-09-30"}
    docs = tmp_path / "crm" / "gx" / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert docs.exists() and "complaints" in docs.read_text()


@pytest.mark.parametrize("name,rows,scale", [("mobi_survey", 250, 10), ("corp_rep_survey", 344, 7)])
def test_surveys_map_onto_rater_dimensions(tmp_path, airflow_home, name, rows, scale):
    url = run_example(tmp_path, airflow_home, name, "2016-12-31")
    assert reconciled(url, "surveys") == {"raw": rows, "accepted": rows, "quarantined": 0}
    responses = read_table(url, "SELECT * FROM fct_survey_response")
    for measure in ("per_reliability", "per_assurance", "per_tangibles", "satisfaction"):
        assert responses[f"{measure}_score"].drop_nulls().is_between(1, 7).all()
    assert responses["recommend_score"].drop_nulls().is_between(0, 10).all()
    answers = read_table(url, "SELECT * FROM fct_survey_answer")
    assert answers["raw_value"].is_between(1, scale).all()  # -99 (no answer) never becomes an answer
    assert answers["response_id"].n_unique() == rows


def test_a_drifted_export_fails_at_once_with_the_cause(tmp_path, airflow_home):
    """A renamed column is not retried for minutes: the run fails on the first try and says why."""
    bad = tmp_path / "drifted.yml"
    bad.write_text((EXAMPLES / "online_retail.yml").read_text().replace("order_id: InvoiceNo", "order_id: Invoice_No"))
    with pytest.raises(AssertionError, match=r"(?s)lacks 'Invoice_No' \(order_id\), did you mean 'InvoiceNo'"):
        run_example(tmp_path, airflow_home, str(bad.with_suffix("")), "2011-12-09")
    tries = (tmp_path / "crm" / "logs" / "crm_run_2011-12-09.log").read_text().count("SchemaDriftError: orders")
    assert tries >= 1 and "up_for_retry" not in (tmp_path / "crm" / "logs" / "crm_run_2011-12-09.log").read_text()
