"""Soak: 30 consecutive daily `crm run`s, then `crm backfill --reprocess` over the same 30 dates in one
process, then one run over the whole history on a fresh warehouse. Not in the default run:

    .venv/bin/python -m pytest -m soak tests/faults/test_soak.py -p no:xdist -s

Checked: memory does not grow with the number of runs done (the peak RSS of each run, from the
child's rusage, and of the backfill process, sampled from /proc), nor does a run's wall time; the
backfill changes no table; every row is accounted for; and the tables that do not depend on which
dates were run (staging, facts, quarantine, the scores of the last date, the current customer
versions) equal those of the one run. Figures go to var/faults/soak.json (CRM_FAULTS_SOAK).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import SAMPLE_END, read_table
from tests.faults.conftest import PROJECT_ROOT, Warehouse, source_records, warehouse_rows, warehouse_state
from tests.faults.driver import SALT

pytestmark = [pytest.mark.soak, pytest.mark.airflow]
DAYS = 30
FIRST = SAMPLE_END - timedelta(days=DAYS - 1)
# Tables whose content does not depend on which dates were run, only on the history up to the last.
SAME_AS_ONE_RUN = ["stg_customer", "stg_order_line", "stg_survey_response", "stg_survey_answer", "stg_complaint",
                   "fct_order_line", "fct_order", "fct_survey_response", "fct_survey_answer", "fct_complaint",
                   "quarantine", "restricted.customer_pii"]
AS_OF_TABLES = ["customer_score_daily", "customer_pyramid_daily", "category_margin_daily", "model_quality"]
# A leak of a few MB per date over 30 dates shows; the noise of one run does not.
RSS_GROWTH_LIMIT = 1.15


def crm(home: Path, url: str, airflow_home: Path, *args: str) -> dict:
    """`crm ...` as a child process: exit code, wall seconds, peak RSS (MB) from its rusage, and the
    largest RSS seen in /proc while it ran (MB, sampled every 0.2 s)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | {
        "CRM_HOME": str(home), "CRM_WAREHOUSE_URL": url, "CRM_PII_SALT": SALT, "AIRFLOW_HOME": str(airflow_home)}
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                return
            rss = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), None)
            if rss:
                samples.append((time.monotonic() - started, int(rss) / 1024))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"args": list(args), "code": proc.returncode, "wall_s": round(time.monotonic() - started, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "samples": samples, "output": output[-3000:]}


def test_thirty_daily_runs_and_a_backfill_hold_steady_and_equal_one_run(tmp_path, sample_dir, airflow_home, tally):
    home = tmp_path / "daily"
    home.mkdir()
    (home / "sample").symlink_to(sample_dir)
    url = f"duckdb:///{home / 'warehouse.duckdb'}"
    runs = []
    for i in range(DAYS):
        day = FIRST + timedelta(days=i)
        run = crm(home, url, airflow_home, "run", "--ds", day.isoformat())
        assert run["code"] == 0, run["output"]
        runs.append({"ds": day.isoformat(), "wall_s": run["wall_s"], "peak_rss_mb": run["peak_rss_mb"]})
    daily_state = warehouse_state(url)

    backfill = crm(home, url, airflow_home, "backfill", "--start", FIRST.isoformat(), "--end", SAMPLE_END.isoformat(),
                   "--reprocess")
    assert backfill["code"] == 0, backfill["output"]
    assert warehouse_state(url) == daily_state  # reprocessing every date changes nothing

    one = tmp_path / "one_run"
    one.mkdir()
    (one / "sample").symlink_to(sample_dir)
    one_url = f"duckdb:///{one / 'warehouse.duckdb'}"
    single = crm(one, one_url, airflow_home, "run", "--ds", SAMPLE_END.isoformat())
    assert single["code"] == 0, single["output"]
    one_state = warehouse_state(one_url)
    differing = [t for t in SAME_AS_ONE_RUN if daily_state[t] != one_state[t]]
    for table in AS_OF_TABLES:
        query = f"SELECT * FROM {table} WHERE as_of_date = :d"
        if not _same_rows(read_table(url, query, d=SAMPLE_END), read_table(one_url, query, d=SAMPLE_END)):
            differing.append(table)
    current = ("SELECT customer_id, pyramid_tier, rfm_segment, lifecycle_stage, country, city, email_hash, phone_hash "
               "FROM dim_customer WHERE is_current")
    if not _same_rows(read_table(url, current), read_table(one_url, current)):
        differing.append("dim_customer (current versions)")
    batches = "SELECT source, batch_date, load_id, source_file, raw_rows, accepted_rows, quarantined_rows FROM etl_batch"
    if not _same_rows(read_table(url, batches), read_table(one_url, batches)):
        differing.append("etl_batch (without run_date)")

    # Memory and time must not grow with the runs already done: the last third against the first
    # third after the first run (which loads 11 days at once).
    first, last = runs[1:1 + DAYS // 3], runs[-(DAYS // 3):]
    peak = {"first": statistics.median(r["peak_rss_mb"] for r in first),
            "last": statistics.median(r["peak_rss_mb"] for r in last)}
    wall = {"first": statistics.median(r["wall_s"] for r in first), "last": statistics.median(r["wall_s"] for r in last)}
    trace = [rss for _, rss in backfill["samples"]]
    third = max(len(trace) // 3, 1)
    backfill_rss = {"peak": backfill["peak_rss_mb"], "first_third_max": round(max(trace[:third], default=0)),
                    "last_third_max": round(max(trace[-third:], default=0))}
    figures = {"daily_runs": runs, "daily_peak_rss_mb_median": peak, "daily_wall_s_median": wall,
               "backfill": {"dates": DAYS, "wall_s": backfill["wall_s"], "rss_mb": backfill_rss,
                            "rss_trace_mb": [round(rss) for rss in trace[::5]]},  # one sample a second
               "one_run": {"wall_s": single["wall_s"], "peak_rss_mb": single["peak_rss_mb"]},
               "differing_from_one_run": differing}
    path = Path(os.environ.get("CRM_FAULTS_SOAK") or PROJECT_ROOT / "var" / "faults" / "soak.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in figures.items() if k != "daily_runs"}, indent=2))

    assert not differing, differing
    assert peak["last"] <= peak["first"] * RSS_GROWTH_LIMIT, peak
    assert wall["last"] <= wall["first"] * 1.5, wall
    assert backfill_rss["last_third_max"] <= backfill_rss["first_third_max"] * RSS_GROWTH_LIMIT, backfill_rss
    warehouse = Warehouse(home, url, "duckdb")
    tally(f"soak: {DAYS} daily runs + backfill", warehouse, source_records(sample_dir, SAMPLE_END), warehouse_rows(url))


def _same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.columns == b.columns and sorted(map(repr, a.rows())) == sorted(map(repr, b.rows()))
