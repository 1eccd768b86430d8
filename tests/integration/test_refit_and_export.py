"""crm_model_refit and crm_export run through Airflow's dag.test() against a loaded warehouse (DuckDB and
the real PostgreSQL), daily scoring picks up the stored fit as of its date, the daily load's asset events
carry their as-of date and row counts, and a failing task reaches the notifier through the failure callback."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from datetime import date, datetime, time, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from pipeline.export import EXPORT_SCHEMA, FILES, MANIFEST
from pipeline.scoring.clv import p_alive
from pipeline.scoring.config import load_scoring_config
from pipeline.scoring.daily import staged_history
from pipeline.scoring.fits import usable_fits
from pipeline.scoring.guards import INLINE, STORED, model_summary
from pipeline.scoring.kpi import ORDER_LINE_SCHEMA, as_input
from pipeline.scoring.rfm import completed_lines_as_of
from pipeline.settings import PROJECT_ROOT, load_settings
from tests.conftest import SAMPLE_END, read_table, run_crm, table_checksum

pytestmark = pytest.mark.airflow

DAGS = PROJECT_ROOT / "dags"
FIT_DATE = date(2025, 12, 28)  # a Sunday: the last day of the refit week [Dec 22, Dec 29)
REFIT_LOGICAL_DATE = datetime(2025, 12, 29, tzinfo=timezone.utc)  # a manual run infers the week ending here
EARLIER = FIT_DATE - timedelta(days=1)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
E164 = re.compile(r"\+[1-9]\d{7,14}\b")

DAG_TEST = """
import json, os, sys
from datetime import datetime
from pathlib import Path
from pipeline.cli import load_dag, migrate_airflow_db
migrate_airflow_db()
dag = load_dag(Path(sys.argv[1]))
when = datetime.fromisoformat(sys.argv[2])
run = dag.test(logical_date=when, run_after=when, run_conf=json.loads(sys.argv[3]))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
print("DAG_TEST_RESULT " + json.dumps({"state": str(run.state), "run_id": run.run_id, "tasks": states}), flush=True)
os._exit(0)  # DuckDB's teardown noise, as in pipeline.cli
"""


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    """Overrides the session sample for this module's crm_home and warehouse_url: five months of
    history, long enough for BG/NBD to identify dropout and for the 13-week holdout check (the
    session's 40-day sample is not)."""
    from pipeline.generate import generate

    out = tmp_path_factory.mktemp("history")
    generate(out, customers=800, days=150, seed=7, end_date=SAMPLE_END, dirty_rate=0.004)
    return out


def env_of(home: Path, airflow_home: Path, url: str) -> dict:
    return os.environ | {"CRM_HOME": str(home), "CRM_WAREHOUSE_URL": url, "CRM_PII_SALT": "test-salt",
                         "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
                         "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def dag_test(dag_id: str, env: dict, when: datetime, conf: dict | None = None) -> dict:
    """One dag.test() run of dags/<dag_id>.py in a fresh process, as `crm run` does for crm_daily."""
    proc = subprocess.run([sys.executable, "-c", DAG_TEST, str(DAGS / f"{dag_id}.py"), when.isoformat(),
                           json.dumps(conf or {})], env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("DAG_TEST_RESULT ")]
    assert proc.returncode == 0 and lines, f"{dag_id}: exit {proc.returncode}\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    result = json.loads(lines[-1].split(" ", 1)[1])
    assert result["state"] == "success", f"{dag_id}: {result}\n{proc.stdout[-8000:]}"
    return result


def midnight_after(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)


def asset_events(airflow_home: Path, uri: str, run_id: str | None = None) -> list[dict]:
    """The asset events Airflow recorded for the asset (dag.test keeps its metadata in SQLite)."""
    engine = sa.create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    query = ("SELECT e.source_dag_id, e.source_run_id, e.source_task_id, e.partition_key, e.extra FROM asset_event AS e"
             " JOIN asset AS a ON a.id = e.asset_id WHERE a.uri = :uri" + (" AND e.source_run_id = :run" if run_id else "")
             + " ORDER BY e.id")
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(query), {"uri": uri, "run": run_id})]
    engine.dispose()
    for row in rows:
        row["extra"] = json.loads(row["extra"]) if isinstance(row["extra"], str) else row["extra"]
    return rows


def scoring_fits(url: str, as_of: date) -> pl.DataFrame:
    return read_table(url, "SELECT model, fit_source, observation_end, parameters FROM model_quality"
                           " WHERE as_of_date = :d AND fit_role = 'scoring' ORDER BY model", d=as_of)


def test_refit_is_stored_and_scoring_uses_it_as_of_its_date(warehouse_url, crm_home, airflow_home):
    env = env_of(crm_home, airflow_home, warehouse_url)
    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", FIT_DATE.isoformat())
    inline = scoring_fits(warehouse_url, FIT_DATE)
    assert inline["fit_source"].to_list() == [INLINE, INLINE]  # no fit stored yet

    first = dag_test("crm_model_refit", env, REFIT_LOGICAL_DATE)
    assert first["tasks"] == {"daily_loaded": "success", "refit": "success"}
    fits = read_table(warehouse_url, "SELECT * FROM model_fit ORDER BY model")
    assert fits["model"].to_list() == ["bgnbd", "gamma_gamma"] and (fits["fit_date"] == FIT_DATE).all()
    assert (fits["status"] == "ok").all() and fits["converged"].all() and (fits["n_customers"] > 0).all()
    # As of the same date, the refit is exactly the fit the daily run made inline.
    assert fits["parameters"].to_list() == inline["parameters"].to_list()
    quality = read_table(warehouse_url, "SELECT model, fit_role, fit_source, check_status FROM model_quality"
                                        " WHERE as_of_date = :d ORDER BY model, fit_role", d=FIT_DATE)
    assert quality.rows() == [("bgnbd", "calibration", INLINE, "ok"), ("bgnbd", "scoring", STORED, None),
                              ("gamma_gamma", "calibration", INLINE, "ok"), ("gamma_gamma", "scoring", STORED, None)]
    # The models asset says which fit date changed and how many rows.
    event = asset_events(airflow_home, "warehouse://crm/model_fit", first["run_id"])[-1]
    assert event["source_dag_id"] == "crm_model_refit"
    assert event["extra"] == {"as_of_date": FIT_DATE.isoformat(), "rows": 2, "rows_basis": "written"}
    assert event["partition_key"] == FIT_DATE.isoformat()

    stored = {t: table_checksum(warehouse_url, t) for t in ("model_fit", "model_quality")}
    dag_test("crm_model_refit", env, REFIT_LOGICAL_DATE)  # idempotent per fit date
    assert {t: table_checksum(warehouse_url, t) for t in stored} == stored

    # A later day scores with the stored parameters, evaluated on that day's histories.
    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", SAMPLE_END.isoformat())
    later = scoring_fits(warehouse_url, SAMPLE_END)
    assert later["fit_source"].to_list() == [STORED, STORED] and (later["observation_end"] == FIT_DATE).all()
    assert later["parameters"].to_list() == fits["parameters"].to_list()
    config = load_scoring_config(load_settings({"CRM_HOME": str(crm_home)}).scoring_file).clv
    bgnbd = usable_fits(fits.to_dicts(), config)["bgnbd"].fit
    orders = staged_history(crm_home / "staging", "orders", SAMPLE_END)
    summary = model_summary(completed_lines_as_of(as_input(orders, ORDER_LINE_SCHEMA), SAMPLE_END), SAMPLE_END,
                            config.period_days)
    x, t_x, T = (summary[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    expected = pl.DataFrame({"customer_id": summary["customer_id"], "expected": p_alive(bgnbd, x, t_x, T)})
    scores = read_table(warehouse_url, "SELECT customer_id, p_alive FROM customer_score_daily WHERE as_of_date = :d",
                        d=SAMPLE_END).join(expected, on="customer_id", how="inner", validate="1:1")
    assert scores.height == summary.height > 100
    assert np.allclose(scores["p_alive"].to_numpy(), scores["expected"].to_numpy(), rtol=0, atol=1e-12)

    # An earlier day never sees the later fit: it falls back to fitting inline.
    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", EARLIER.isoformat())
    earlier = scoring_fits(warehouse_url, EARLIER)
    assert earlier["fit_source"].to_list() == [INLINE, INLINE] and (earlier["observation_end"] == EARLIER).all()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_segment_export_and_the_daily_asset_events(warehouse_url, crm_home, airflow_home):
    env = env_of(crm_home, airflow_home, warehouse_url)
    run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", SAMPLE_END.isoformat())
    scores = read_table(warehouse_url, "SELECT customer_id, pyramid_tier, rfm_segment, churn_risk_band, clv_amount"
                                       " FROM customer_score_daily WHERE as_of_date = :d", d=SAMPLE_END)

    # crm_daily's load published every table it wrote, with the as-of date and row counts.
    events = [e for e in asset_events(airflow_home, "warehouse://crm/customer_score_daily")
              if e["source_dag_id"] == "crm_daily" and e["extra"]["as_of_date"] == SAMPLE_END.isoformat()]
    assert events and events[-1]["extra"] == {"as_of_date": SAMPLE_END.isoformat(), "rows": scores.height,
                                              "rows_basis": "written"}
    assert events[-1]["partition_key"] == SAMPLE_END.isoformat()  # one crm_export run per as-of date
    run_id = events[-1]["source_run_id"]
    fct = asset_events(airflow_home, "warehouse://crm/fct_order_line", run_id)[-1]["extra"]
    assert fct["rows_basis"] == "table" and fct["rows"] == read_table(warehouse_url, "SELECT count(*) AS n FROM fct_order_line")["n"][0]
    batch = asset_events(airflow_home, "warehouse://crm/etl_batch", run_id)[-1]["extra"]
    assert batch["rows_basis"] == "run_date" and batch["rows"] == read_table(
        warehouse_url, "SELECT count(*) AS n FROM etl_batch WHERE run_date = :d", d=SAMPLE_END)["n"][0] > 0

    # No triggering event in a dag.test run: the as-of date comes from the run's conf, as for a manual run.
    dag_test("crm_export", env, midnight_after(SAMPLE_END), {"as_of_date": SAMPLE_END.isoformat()})
    out = crm_home / "exports" / SAMPLE_END.isoformat()
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, MANIFEST])  # no temporary file left behind
    csv = pl.read_csv(out / "segments.csv", schema=EXPORT_SCHEMA)
    parquet = pl.read_parquet(out / "segments.parquet")
    assert parquet.schema == pl.Schema(EXPORT_SCHEMA) and csv.equals(parquet)
    assert parquet.height == scores.height > 100 and (parquet["as_of_date"] == SAMPLE_END).all()
    assert parquet["customer_id"].to_list() == sorted(scores["customer_id"].to_list())
    expected = scores.with_columns(pl.col("clv_amount").round(2)).sort("customer_id")
    assert parquet.drop("as_of_date").equals(expected.select(parquet.drop("as_of_date").columns))
    # No contact data: only the export columns, and nothing in them looks like an email or a phone.
    text = (out / "segments.csv").read_text()
    assert not EMAIL.search(text) and not E164.search(text)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["rows"] == parquet.height and manifest["sha256"] == {name: sha256(out / name) for name in FILES}

    before = {name: sha256(out / name) for name in (*FILES, MANIFEST)}
    dag_test("crm_export", env, midnight_after(SAMPLE_END) + timedelta(minutes=1), {"as_of_date": SAMPLE_END.isoformat()})
    assert {name: sha256(out / name) for name in (*FILES, MANIFEST)} == before  # idempotent


class Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Webhook)
    Webhook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", Webhook.received
    server.shutdown()
    server.server_close()


def test_a_failing_task_notifies_once_without_retrying_bad_input(tmp_path, airflow_home, webhook):
    url, received = webhook
    export = tmp_path / "export" / "orders"
    export.mkdir(parents=True)
    (export / f"orders_{SAMPLE_END.isoformat()}.csv").write_bytes(b"order_id,customer_id\n\xff\xfe broken \xfa\n")
    sources = tmp_path / "sources.yml"
    sources.write_text(f"base_dir: {tmp_path / 'export'}\nsources:\n  orders:\n"
                       "    path: orders/orders_{date}.csv\n    format: csv\n    encoding: utf-8\n")
    home = tmp_path / "crm"
    proc = run_crm(home, airflow_home, f"duckdb:///{home / 'warehouse.duckdb'}", "run", "--ds", SAMPLE_END.isoformat(),
                   "--sources", str(sources), extra_env={"CRM_ALERT_WEBHOOK_URL": url}, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert len(received) == 1, received  # one failed task, failed once: bad input is not retried
    message = received[0]
    payload = message["payload"]
    assert (payload["dag_id"], payload["task_id"], payload["try_number"]) == ("crm_daily", "extract_orders", 1)
    assert payload["error_type"] == "AirflowFailException" and "orders_2025-12-31.csv" in payload["error"]
    assert payload["data_interval_start"].startswith(SAMPLE_END.isoformat()) and payload["run_id"]
    assert message["subject"].startswith("crm: crm_daily.extract_orders failed")
    log = (home / "logs" / f"crm_run_{SAMPLE_END.isoformat()}.log").read_text()
    assert "crm: crm_daily.extract_orders failed" in log and "NOTIFY crm: crm_daily.extract_orders failed" in log
