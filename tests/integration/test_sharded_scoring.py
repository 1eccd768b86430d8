"""crm run with CRM_SCORE_SHARDS=4 really runs the sharded score tasks through Airflow (a plan, four
mapped shard tasks, a merge) on generated data, and writes and loads the tables one score task
would, frame for frame."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import polars as pl
import pytest

from pipeline.generate import generate
from pipeline import tasks
from pipeline.scoring.daily import SCORE_TABLES, daily_scores, staged_inputs, staged_rows
from pipeline.settings import load_settings
from tests.conftest import SAMPLE_END, read_table, run_crm

pytestmark = pytest.mark.airflow
SHARDS = 4
# The crm_daily task graph as the DAG file builds it: mapped or not, upstream tasks, retries, failure callbacks.
SHAPE = """
import json
from pipeline.cli import load_dag
out = {}
for t in load_dag().tasks:
    callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
    out[t.task_id] = {"mapped": bool(getattr(t, "is_mapped", False)), "upstream": sorted(t.upstream_task_ids),
                      "retries": t.retries, "callbacks": [f"{c.__module__}.{c.__qualname__}" for c in callbacks if c]}
print("SHAPE " + json.dumps(out))
"""


def dag_shape(tmp_path, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", SHAPE], capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "CRM_SCORE_SHARDS"}
                         | {"AIRFLOW_HOME": str(tmp_path / "airflow"), **env})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("SHAPE ")).split(" ", 1)[1])


def test_the_score_step_follows_the_shard_count(tmp_path):
    one = dag_shape(tmp_path)
    assert "score" in one and not {"score_plan", "score_shard", "score_merge"} & set(one)
    assert "score" in one["load"]["upstream"]
    four = dag_shape(tmp_path, CRM_SCORE_SHARDS=str(SHARDS))
    assert "score" not in four
    assert four["score_shard"]["mapped"] and four["score_shard"]["upstream"] == ["score_plan"]
    assert set(four["score_merge"]["upstream"]) == {"score_plan", "score_shard"}
    assert "score_merge" in four["load"]["upstream"]
    assert {f"stage_{kind}" for kind in ("customers", "orders", "surveys", "complaints")} <= set(four["score_plan"]["upstream"])
    for task in ("score_plan", "score_shard", "score_merge"):
        assert four[task]["retries"] >= 1 and "pipeline.callbacks.task_failed" in four[task]["callbacks"], task


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    generate(root / "sample", customers=3000, days=90, seed=11, end_date=SAMPLE_END, dirty_rate=0.004)
    home, url = root, f"duckdb:///{root / 'warehouse.duckdb'}"
    # Its own Airflow home: the run's task graph differs from the one-task runs of other tests.
    proc = run_crm(home, root / "airflow", url, "run", "--ds", SAMPLE_END.isoformat(),
                   extra_env={"CRM_SCORE_SHARDS": str(SHARDS)})
    return home, url, proc


def test_the_dag_ran_a_plan_four_mapped_shards_and_a_merge(sharded_run):
    home, _, _ = sharded_run
    log = (home / "logs" / f"crm_run_{SAMPLE_END.isoformat()}.log").read_text()
    assert f"score plan for {SAMPLE_END}: {SHARDS} shards" in log
    for index in range(1, SHARDS + 1):
        assert f"score shard {index} of {SHARDS} for {SAMPLE_END}" in log
    shard_dir = home / "score_shards" / f"as_of_date={SAMPLE_END.isoformat()}"
    parts = [pl.read_parquet(shard_dir / f"shard={i}-of-{SHARDS}" / "customer_score_daily.parquet") for i in range(SHARDS)]
    assert all(part.height > 0 for part in parts)
    ids = [set(part["customer_id"]) for part in parts]
    assert sum(map(len, ids)) == len(set().union(*ids))  # no customer in two shards
    meta = json.loads(pl.read_parquet(shard_dir / "plan" / "meta.parquet")["plan"][0])
    assert meta["count"] == SHARDS


def test_sharded_scores_equal_one_score_task_table_by_table(sharded_run):
    home, url, _ = sharded_run
    expected = daily_scores(**staged_inputs(home / "staging", SAMPLE_END), as_of=SAMPLE_END)
    scores = home / "scores" / f"as_of_date={SAMPLE_END.isoformat()}"
    assert expected["customer_score_daily"].height > 1000
    for table in SCORE_TABLES:
        assert pl.read_parquet(scores / f"{table}.parquet").equals(expected[table]), table
    loaded = read_table(url, "SELECT count(*) AS n FROM customer_score_daily WHERE as_of_date = :d", d=SAMPLE_END)
    assert loaded["n"][0] == expected["customer_score_daily"].height


def test_score_day_scores_a_long_history_one_shard_at_a_time_with_the_same_rows(sharded_run, tmp_path, caplog):
    home, url, _ = sharded_run
    lines = staged_rows(home / "staging", "orders", SAMPLE_END)
    written = {}
    for shards, shard_lines in ((1, lines), (3, lines // 3 + 1)):
        shutil.copytree(home / "staging", tmp_path / str(shards) / "staging")
        settings = load_settings({"CRM_HOME": str(tmp_path / str(shards)), "CRM_WAREHOUSE_URL": url,
                                  "CRM_SCORE_SHARD_LINES": str(shard_lines)})
        with caplog.at_level(logging.INFO, logger="pipeline.tasks"):
            written[shards] = tasks.score_day(SAMPLE_END, settings)
        assert (f"scoring {SAMPLE_END} in 3 customer shards" in caplog.text) == (shards == 3)
    assert written[1]["rows"] == written[3]["rows"] and written[3]["customers"] > 1000
    for table in SCORE_TABLES:
        one, three = (pl.read_parquet(f"{written[n]['path']}/{table}.parquet") for n in (1, 3))
        assert three.equals(one), table
