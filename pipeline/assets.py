"""The warehouse tables as Airflow assets, and what their events carry.

One asset per table, `warehouse://crm/<table>` (schema-qualified where the table is not in the
default schema, e.g. `warehouse://crm/restricted.customer_pii`). The URI names the table, not the
database it lives in, so it is the same locally, in CI and in production, and never holds
credentials.

Every event is one as-of date's update of the table: its partition key is that date (YYYY-MM-DD)
and its `extra` says the date and how many rows it concerns (docs/operations.md, "Assets").
Consumers schedule on them with `PartitionedAssetTimetable`, which gives one run per date however
many events arrive together (e.g. the days of a backfill); a plain `schedule=[asset]` consumer is
never triggered by partitioned events.

Imported by the DAG files at parse time: nothing heavy here.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from airflow.sdk import Asset

URI_PREFIX = "warehouse://crm/"

# Every table a crm_daily run writes (pipeline/warehouse/load.py): staging batches, the facts and
# dimensions rebuilt from them, the score tables' as-of partition, and the audit tables; and the
# fct_survey_answer view, whose rows change with the tables under it.
DAILY_TABLES = (
    "stg_customer", "stg_order_line", "stg_survey_response", "stg_survey_answer", "stg_complaint",
    "fct_order_line", "fct_order", "fct_survey_response", "fct_survey_answer", "fct_complaint",
    "dim_customer", "dim_date", "restricted.customer_pii",
    "customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "kpi_threshold_check",
    "model_quality", "category_margin_daily",
    "quarantine", "etl_batch", "dq_validation_result", "etl_run",
)
# crm_model_refit's outputs: the stored fits (the "models" asset) and their quality rows.
REFIT_TABLES = ("model_fit", "model_quality")

# How an event's `rows` was counted: the rows the run wrote into the table (the partitions it
# replaced), the table's rows for the run date, or the whole table after the run (tables rebuilt
# from all history, whose rows no single date owns).
WRITTEN, RUN_DATE, TABLE = "written", "run_date", "table"


def table_asset(table: str) -> Asset:
    return Asset(uri=URI_PREFIX + table)


SCORES = table_asset("customer_score_daily")  # crm_export runs when this one updates
MODELS = table_asset("model_fit")


def extra(as_of: date, rows: int, basis: str = WRITTEN) -> dict:
    return {"as_of_date": as_of.isoformat(), "rows": int(rows), "rows_basis": basis}


def annotate(outlet_events, extras: Mapping[str, dict]) -> None:
    """Sets each table's asset event: partition key and extra (outlet_events is the task's context accessor)."""
    for table, values in extras.items():
        event = outlet_events[table_asset(table)]
        event.extra = dict(values)
        event.add_partitions(values["as_of_date"])


def requested_date(dag_run, params) -> date:
    """The as-of date an export run is for: the partition key of the scores update that triggered it,
    or, for a manual run, the `as_of_date` it was given (`airflow dags trigger crm_export --conf ...`)."""
    from airflow.sdk.exceptions import AirflowFailException  # a wrong request: retrying will not fix it

    value = getattr(dag_run, "partition_key", None) or (params or {}).get("as_of_date")
    if not value:
        raise AirflowFailException(
            "no partition key (the run was not triggered by a customer_score_daily update) and no as_of_date in the "
            "run's conf: trigger it as `airflow dags trigger crm_export --conf '{\"as_of_date\": \"YYYY-MM-DD\"}'`")
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise AirflowFailException(f"as-of date {value!r} is not a YYYY-MM-DD date") from exc
