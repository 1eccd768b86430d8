"""The same date triggered twice at once: two whole `crm run --ds D` (dag.test, every task) on one
home and warehouse. On a scheduler, crm_daily's max_active_runs=1 and the unique logical date keep
that from happening; locally nothing did, and the second dag.test cleared the task instances the
first was running. Now the second run waits for the first (pipeline/cli.py one_run_at_a_time), then
runs the date again: both succeed, and the warehouse is exactly that of one run."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import SAMPLE_END
from tests.faults.conftest import PROJECT_ROOT, source_records, warehouse_rows, warehouse_state
from tests.faults.driver import SALT

pytestmark = [pytest.mark.faults, pytest.mark.airflow, pytest.mark.xdist_group("faults")]


def test_two_runs_of_one_date_at_once_end_as_one_run(at_mid, references, airflow_home, tally):
    warehouse = at_mid("duckdb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_HOME": str(warehouse.home), "CRM_WAREHOUSE_URL": warehouse.url, "CRM_PII_SALT": SALT,
        "AIRFLOW_HOME": str(airflow_home)}
    command = [sys.executable, "-m", "pipeline.cli", "run", "--ds", SAMPLE_END.isoformat()]
    runs = [subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=900) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-3000:] for _, err in outputs]
    waited = [err for _, err in outputs if "waiting for it to finish" in err]
    assert len(waited) == 1, [err[-1000:] for _, err in outputs]
    assert warehouse_state(warehouse.url) == references("duckdb").end_state
    tally("same date run twice at once", warehouse, source_records(warehouse.sample, SAMPLE_END),
          warehouse_rows(warehouse.url))
