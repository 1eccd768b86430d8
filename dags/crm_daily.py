"""crm_daily: raw exports -> validated staging -> Polars scores -> warehouse, one data interval per run.

Thin by design: every task calls one function in pipeline.tasks, imported inside the task so that
parsing this file stays cheap. XCom carries paths and counts only. The load publishes one asset per
warehouse table it writes (pipeline/assets.py); crm_export runs on the customer_score_daily one.
Every task retries with backoff and reports its final failure (pipeline/callbacks.py).
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from pipeline.assets import DAILY_TABLES, table_asset
from pipeline.callbacks import DEFAULT_ARGS
from pipeline.kinds import KINDS
from pipeline.scoring.shard_count import shard_count

SHARDS = shard_count()  # CRM_SCORE_SHARDS; 1: one score task


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

    # Sharded scoring (pipeline/scoring/shards.py): a plan over the whole history, one mapped task
    # per shard of the customers (on Celery, on any worker), then a merge into score's output.
    @task
    def score_plan(staged: list[dict], shards: int, data_interval_start=None) -> dict:
        from pipeline import tasks

        return tasks.score_plan(data_interval_start.date(), shards)

    @task
    def score_shard(plan: dict, index: int, data_interval_start=None) -> dict:
        from pipeline import tasks

        return tasks.score_shard(data_interval_start.date(), plan, index)

    @task
    def score_merge(plan: dict, shards: list[dict], data_interval_start=None) -> dict:
        from pipeline import tasks

        return tasks.score_merge(data_interval_start.date(), plan, list(shards))

    @task(outlets=[table_asset(t) for t in DAILY_TABLES])
    def load(staged: list[dict], scored: dict, data_interval_start=None, outlet_events=None) -> dict:
        from pipeline.assets import annotate
        from pipeline.tasks import load_asset_extras, load_day

        loaded = load_day(data_interval_start.date(), staged, scored)
        annotate(outlet_events, load_asset_extras(data_interval_start.date(), loaded))
        return loaded

    # A failed report is almost always a bug, not a passing fault: one quick retry, not the backoff.
    @task(retries=1, retry_delay=timedelta(seconds=30))
    def report(loaded: dict, data_interval_start=None) -> str:
        """The run report: a self-contained HTML file; its path is in this task's log and XCom."""
        from pipeline.tasks import report_day

        return report_day(data_interval_start.date())

    # After the load, so a rolled-back load alerts nobody. A channel that fails (mail server down)
    # fails the run after two short retries (30 s, then 60 s with the backoff), not silently; a
    # misconfigured one fails at once.
    @task(retries=2, retry_delay=timedelta(seconds=30))
    def notify(loaded: dict, data_interval_start=None) -> dict:
        """KPI alerts of the day through pipeline.notify: the log, plus SMTP / webhook when configured."""
        from pipeline.tasks import notify_day

        return notify_day(data_interval_start.date())

    staged = {}
    for kind in KINDS:
        landed = extract.override(task_id=f"extract_{kind}")(kind)
        staged[kind] = stage.override(task_id=f"stage_{kind}")(kind, landed)
    # Referential checks look back: orders against the customer master, surveys and complaints
    # against the master or, without one, against the customers seen in orders.
    staged["customers"] >> staged["orders"] >> [staged["surveys"], staged["complaints"]]
    results = list(staged.values())
    if SHARDS > 1:
        plan = score_plan(results, SHARDS)
        scored = score_merge(plan, score_shard.partial(plan=plan).expand(index=list(range(SHARDS))))
    else:
        scored = score(results)
    loaded = load(results, scored)
    report(loaded)
    notify(loaded)


dag_object = crm_daily()
