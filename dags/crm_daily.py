"""crm_daily: raw exports -> validated staging -> Polars scores -> warehouse, one data interval per run.

Thin by design: every task calls one function in pipeline.tasks, imported inside the task so that
parsing this file stays cheap. XCom carries paths and counts only.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from pipeline.kinds import KINDS

WAREHOUSE_TABLES = ["fct_order_line", "fct_order", "fct_survey_response", "fct_survey_answer", "fct_complaint", "dim_customer",
                    "customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "model_quality",
                    "category_margin_daily", "quarantine", "dq_validation_result"]
DEFAULT_ARGS = {"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True}


@dag(
    dag_id="crm_daily",
    # An interval timetable: the run for logical date D covers [D, D+1) and starts once D is over.
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    # Early enough for any company's history: Airflow silently skips tasks of runs before start_date,
    # and analysts backfill old exports (CDNOW starts in 1997). catchup=False keeps the scheduler from
    # walking that history on its own.
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm"],
)
def crm_daily():
    @task
    def extract(kind: str, data_interval_start=None) -> dict:
        from pipeline.tasks import extract_source

        return extract_source(kind, data_interval_start.date())

    @task
    def stage(kind: str, extracted: dict, data_interval_start=None) -> dict:
        from pipeline.tasks import stage_source

        return stage_source(kind, extracted, data_interval_start.date())

    @task
    def score(staged: list[dict], data_interval_start=None) -> dict:
        from pipeline.tasks import score_day

        return score_day(data_interval_start.date())

    @task(outlets=[Asset(f"warehouse://crm/{t}") for t in WAREHOUSE_TABLES])
    def load(staged: list[dict], scored: dict, data_interval_start=None) -> dict:
        from pipeline.tasks import load_day

        return load_day(data_interval_start.date(), staged, scored)

    # A failed report is almost always a bug, not a passing fault: one quick retry, not the backoff.
    @task(retries=1, retry_delay=timedelta(seconds=30))
    def report(loaded: dict, data_interval_start=None) -> str:
        """The run report: a self-contained HTML file; its path is in this task's log and XCom."""
        from pipeline.tasks import report_day

        return report_day(data_interval_start.date())

    staged = {}
    for kind in KINDS:
        landed = extract.override(task_id=f"extract_{kind}")(kind)
        staged[kind] = stage.override(task_id=f"stage_{kind}")(kind, landed)
    # Referential checks look back: orders against the customer master, surveys and complaints
    # against the master or, without one, against the customers seen in orders.
    staged["customers"] >> staged["orders"] >> [staged["surveys"], staged["complaints"]]
    results = list(staged.values())
    report(load(results, score(results)))


dag_object = crm_daily()
