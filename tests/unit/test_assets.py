"""Asset events (pipeline/assets.py) on Airflow's own outlet accessors, and the failure report
(pipeline/callbacks.py) built from a task instance's context."""
from __future__ import annotations

from datetime import date, datetime, timezone
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.context import OutletEventAccessors

from pipeline.assets import SCORES, annotate, extra, requested_date, table_asset
from pipeline.callbacks import failure_message

AS_OF = date(2025, 12, 31)


def test_each_event_is_partitioned_by_its_as_of_date_and_carries_its_rows():
    events = OutletEventAccessors()
    annotate(events, {"customer_score_daily": extra(AS_OF, 1200), "fct_order": extra(AS_OF, 9, "table")})
    scores = events[SCORES]
    assert scores.extra == {"as_of_date": "2025-12-31", "rows": 1200, "rows_basis": "written"}
    assert scores.partition_keys == {"2025-12-31"}
    assert events[table_asset("fct_order")].extra["rows_basis"] == "table"


def test_an_export_is_for_the_triggering_partition_else_the_given_date():
    assert requested_date(SimpleNamespace(partition_key="2025-12-30"), {"as_of_date": "2025-12-31"}) == date(2025, 12, 30)
    assert requested_date(SimpleNamespace(partition_key=None), {"as_of_date": "2025-12-31"}) == AS_OF
    with pytest.raises(AirflowFailException, match="as_of_date"):  # not retried: a wrong request stays wrong
        requested_date(SimpleNamespace(partition_key=None), {"as_of_date": None})
    with pytest.raises(AirflowFailException, match="not a YYYY-MM-DD"):
        requested_date(None, {"as_of_date": "31/12/2025"})


def test_the_failure_report_names_the_task_try_and_cause():
    ti = SimpleNamespace(dag_id="crm_daily", task_id="load", map_index=-1, run_id="scheduled__2026-01-01", try_number=3,
                         max_tries=2, log_url="http://airflow/dags/crm_daily/runs/x/tasks/load?try_number=3")
    start = datetime(2025, 12, 31, tzinfo=timezone.utc)
    subject, body, payload = failure_message({"ti": ti, "exception": RuntimeError("connection reset"),
                                              "data_interval_start": start, "logical_date": start})
    assert subject == "crm: crm_daily.load failed (scheduled__2026-01-01)"
    assert "try 3 of 3" in body and "RuntimeError: connection reset" in body and ti.log_url in body
    assert payload["error_type"] == "RuntimeError" and payload["data_interval_start"] == start.isoformat()
    assert payload["data_interval_end"] is None
