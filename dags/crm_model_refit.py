"""crm_model_refit: BG/NBD and Gamma-Gamma refitted weekly, stored for daily scoring, with their quality.

The run for the week [Mon, next Mon) fits on the history up to the end of its Sunday (the data
interval's last day), once crm_daily has loaded that day, and replaces that fit date's model_fit and
model_quality rows (pipeline/scoring/fits.py). Daily scores from then on use it; the `models` asset
(warehouse://crm/model_fit) says it changed. Thin, like crm_daily: one pipeline.tasks call per task.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from pipeline.assets import REFIT_TABLES, table_asset
from pipeline.callbacks import DEFAULT_ARGS


def fit_date(data_interval_end):
    """The last day the interval covers: history up to data_interval_end (a midnight UTC), exclusive."""
    return (data_interval_end - timedelta(days=1)).date()


@dag(
    dag_id="crm_model_refit",
    schedule=CronDataIntervalTimetable("0 0 * * 1", timezone="UTC"),  # weekly, Monday to Monday
    start_date=pendulum.datetime(1990, 1, 1, tz="UTC"),  # as crm_daily: old histories can be refitted
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["crm"],
)
def crm_model_refit():
    # crm_daily's run for the fit date starts at the same midnight: wait for its load, rather than
    # fit on a history that lacks the last day. Reschedule mode frees the worker slot between pokes.
    @task.sensor(poke_interval=600, timeout=int(timedelta(hours=20).total_seconds()), mode="reschedule")
    def daily_loaded(data_interval_end=None) -> bool:
        from pipeline.tasks import scores_loaded

        return scores_loaded(fit_date(data_interval_end))

    @task(outlets=[table_asset(t) for t in REFIT_TABLES])
    def refit(data_interval_end=None, outlet_events=None) -> dict:
        from pipeline.assets import annotate, extra
        from pipeline.tasks import refit_models

        day = fit_date(data_interval_end)
        result = refit_models(day)
        annotate(outlet_events, {table: extra(day, rows) for table, rows in result["rows"].items()})
        return result

    daily_loaded() >> refit()


dag_object = crm_model_refit()
