"""The DAG folder parses cleanly, cheaply, and wires the tasks we expect."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.cli import DAG_FILE

pytestmark = pytest.mark.airflow


def airflow_env(home) -> dict:
    return os.environ | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(DAG_FILE.parent),
                         "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def test_dagbag_has_no_import_errors_and_the_expected_shape(airflow_home):
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(DAG_FILE.parent)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['crm_daily']\n"
        "print(sorted(dag.task_dict), dag.catchup, type(dag.timetable).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=airflow_env(airflow_home), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    tasks, catchup, timetable = out.stdout.strip().rsplit("] ", 1)[0] + "]", *out.stdout.strip().rsplit("] ", 1)[1].split()
    for kind in ("customers", "orders", "surveys", "complaints"):
        assert f"'extract_{kind}'" in tasks and f"'stage_{kind}'" in tasks
    assert "'score'" in tasks and "'load'" in tasks
    assert catchup == "False" and timetable == "CronDataIntervalTimetable"


def test_list_import_errors_local_is_clean(airflow_home):
    out = subprocess.run([sys.executable, "-m", "airflow", "dags", "list-import-errors", "--local"],
                         env=airflow_env(airflow_home), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


def test_dag_file_imports_no_heavy_modules():
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(DAG_FILE)!r})\n"
        "heavy = [m for m in ('polars', 'great_expectations', 'pandas', 'duckdb') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
