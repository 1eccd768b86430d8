"""The DAG folder parses cleanly, cheaply, and wires the tasks, schedules, assets, retries and failure
callbacks we expect."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.assets import DAILY_TABLES, REFIT_TABLES, URI_PREFIX
from pipeline.cli import DAG_FILE
from pipeline.warehouse.schema import sql_objects

pytestmark = pytest.mark.airflow

DAG_FOLDER = DAG_FILE.parent
DAG_FILES = sorted(DAG_FOLDER.glob("*.py"))
DAG_IDS = {"crm_daily", "crm_model_refit", "crm_export"}
HEAVY = ("polars", "great_expectations", "pandas", "duckdb", "numpy", "scipy", "pyarrow")


def airflow_env(home) -> dict:
    return os.environ | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FOLDER),
                         "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


# Each DAG as the dag-processor sees it, plus each task's next retry delays as Airflow's scheduler
# computes them (TaskInstance.next_retry_datetime), printed as JSON.
DESCRIBE = """
import json, uuid
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance
from airflow.serialization.serialized_objects import DagSerialization

bag = DagBag(dag_folder=%r)
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {}}
end = datetime(2025, 1, 1, tzinfo=timezone.utc)
for dag_id, dag in bag.dags.items():
    scheduled = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    tasks = {}
    for task in dag.tasks:
        ti = TaskInstance(task=scheduled.get_task(task.task_id), run_id="r", dag_version_id=uuid.uuid4())
        delays = []
        for attempt in range(1, task.retries + 1):
            ti.try_number, ti.end_date = attempt, end
            delays.append((ti.next_retry_datetime() - end).total_seconds())
        tasks[task.task_id] = {
            "retries": task.retries, "delays": delays,
            "callbacks": [f"{c.__module__}.{c.__qualname__}" for c in task.on_failure_callback],
            "outlets": [o.uri for o in task.outlets],
        }
    condition = getattr(dag.timetable, "asset_condition", None)
    assets = [a.uri for a in getattr(condition, "objects", [condition] if hasattr(condition, "uri") else [])]
    out["dags"][dag_id] = {"tasks": tasks, "catchup": dag.catchup, "timetable": type(dag.timetable).__name__,
                           "schedule": getattr(dag.timetable, "_expression", None), "assets": assets,
                           "max_active_runs": dag.max_active_runs}
print("DESCRIBE " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def described(airflow_home) -> dict:
    out = subprocess.run([sys.executable, "-c", DESCRIBE % str(DAG_FOLDER)], env=airflow_env(airflow_home),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(line for line in reversed(out.stdout.splitlines()) if line.startswith("DESCRIBE "))
    return json.loads(line.split(" ", 1)[1])


def test_dagbag_has_no_import_errors_and_the_expected_dags(described):
    assert not described["import_errors"], described["import_errors"]
    assert set(described["dags"]) == DAG_IDS


def test_crm_daily_shape(described):
    dag = described["dags"]["crm_daily"]
    tasks = dag["tasks"]
    for kind in ("customers", "orders", "surveys", "complaints"):
        assert f"extract_{kind}" in tasks and f"stage_{kind}" in tasks
    assert "score" in tasks or any(t.startswith("score") for t in tasks)
    assert "load" in tasks
    assert dag["catchup"] is False and dag["timetable"] == "CronDataIntervalTimetable" and dag["max_active_runs"] == 1


def test_the_load_publishes_one_asset_per_table_it_writes(described):
    outlets = described["dags"]["crm_daily"]["tasks"]["load"]["outlets"]
    assert outlets == [URI_PREFIX + t for t in DAILY_TABLES]
    assert len(set(outlets)) == len(outlets)
    # Every warehouse table is some DAG's output, except the schema's own bookkeeping.
    tables = {obj.name for obj in sql_objects("tables")}
    assert tables - set(DAILY_TABLES) - set(REFIT_TABLES) == {"etl_schema_state"}
    # A fact kept as a view (fct_survey_answer) is an asset too: its rows change with the tables under it.
    fact_views = {obj.name for obj in sql_objects("views") if obj.name.startswith("fct_")}
    assert fact_views == {"fct_survey_answer"}
    assert set(DAILY_TABLES) <= tables | fact_views and set(REFIT_TABLES) <= tables
    assert described["dags"]["crm_model_refit"]["tasks"]["refit"]["outlets"] == [URI_PREFIX + t for t in REFIT_TABLES]


def test_refit_is_weekly_and_export_runs_on_the_scores_asset(described):
    refit, export = described["dags"]["crm_model_refit"], described["dags"]["crm_export"]
    assert refit["timetable"] == "CronDataIntervalTimetable" and refit["schedule"] == "0 0 * * 1"
    assert list(refit["tasks"]) == ["daily_loaded", "refit"] and refit["catchup"] is False
    # Partitioned: one run per as-of date updated, never one run for several (pipeline/assets.py).
    assert export["timetable"] == "PartitionedAssetTimetable"
    assert export["assets"] == [URI_PREFIX + "customer_score_daily"]


def test_every_task_retries_with_backoff_and_reports_its_failure(described):
    for dag_id, dag in described["dags"].items():
        for task_id, task in dag["tasks"].items():
            where = f"{dag_id}.{task_id}"
            assert task["retries"] >= 1, where
            assert "pipeline.callbacks.task_failed" in task["callbacks"], where
            # Backoff: each retry waits at least twice the base of the one before (Airflow adds up to
            # 100% jitter), so no two consecutive waits can be the constant delay.
            delays = task["delays"]
            assert all(later > earlier for earlier, later in zip(delays, delays[1:])), (where, delays)
    daily = described["dags"]["crm_daily"]["tasks"]
    assert 120 <= daily["load"]["delays"][0] < 240 and 240 <= daily["load"]["delays"][1] < 480, daily["load"]


def test_list_import_errors_local_is_clean(airflow_home):
    out = subprocess.run([sys.executable, "-m", "airflow", "dags", "list-import-errors", "--local"],
                         env=airflow_env(airflow_home), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_no_heavy_modules(path):
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
