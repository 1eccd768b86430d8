"""crm_export: the CRM segment export, written whenever crm_daily updates customer_score_daily.

Scheduled on the warehouse://crm/customer_score_daily asset, partitioned by as-of date: each update
gives one run for its date, however many arrive together (a backfill's days), and the run writes
$CRM_HOME/exports/<as_of_date>/segments.{csv,parquet} (pipeline/export.py). A manual run exports the
date it is given: `airflow dags trigger crm_export --conf '{"as_of_date": "2025-12-31"}'`.
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, PartitionedAssetTimetable, dag, task

from pipeline.assets import SCORES
from pipeline.callbacks import DEFAULT_ARGS


@dag(
    dag_id="crm_export",
    schedule=PartitionedAssetTimetable(assets=SCORES),  # partition key = as-of date, mapped as is
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"as_of_date": Param(None, type=["null", "string"], format="date",
                                description="Manual runs only: the as-of date to export (YYYY-MM-DD)")},
    tags=["crm"],
)
def crm_export():
    @task
    def export(dag_run=None, params=None) -> dict:
        from pipeline.assets import requested_date
        from pipeline.tasks import export_segments

        return export_segments(requested_date(dag_run, params))

    export()


dag_object = crm_export()
