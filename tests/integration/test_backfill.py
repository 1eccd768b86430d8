"""`crm backfill` end to end on DuckDB and the real PostgreSQL: a backfilled date reproduces the scores
its daily run made (as-of), and a backfill resumes after a kill or a failed date from the warehouse's
own record of which dates committed."""
from __future__ import annotations

import shutil
from datetime import date

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipeline.summary import warehouse_objects
from tests.conftest import SAMPLE_END, read_table, run_crm, table_checksum

pytestmark = pytest.mark.airflow

# Two early days and the last one: the run of the last day alone loads every batch of the early ones.
D1, D2, D3 = date(2025, 12, 10), date(2025, 12, 11), SAMPLE_END
AS_OF_TABLES = ("customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_threshold_check", "kpi_alert",
                "category_margin_daily")
# Three consecutive days for the resume test.
R = [date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31)]


def second_warehouse(request, tmp_path, sample_dir, url: str):
    home = tmp_path / "crm_b"
    home.mkdir()
    (home / "sample").symlink_to(sample_dir)
    if url.startswith("duckdb:"):
        return home, f"duckdb:///{home / 'warehouse.duckdb'}"
    return home, request.getfixturevalue("pg_cluster").new_database("wh_b")


def as_of_rows(url: str, table: str, days: list[date]) -> pl.DataFrame:
    frame = read_table(url, f"SELECT * FROM {table} WHERE as_of_date IN (:a, :b)", a=days[0], b=days[1])
    return frame.sort(frame.columns)


def run_dates(url: str) -> list[date]:
    return read_table(url, "SELECT run_date FROM etl_run ORDER BY run_date")["run_date"].to_list()


def test_a_backfilled_date_reproduces_its_daily_run(request, tmp_path, crm_home, warehouse_url, sample_dir,
                                                    airflow_home):
    # A: the daily runs, in date order.
    for day in (D1, D2, D3):
        run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", day.isoformat())
    # B: the last day first, so that its run loads every batch up to it; then the early days.
    home_b, url_b = second_warehouse(request, tmp_path, sample_dir, warehouse_url)
    run_crm(home_b, airflow_home, url_b, "run", "--ds", D3.isoformat())
    assert run_dates(url_b) == [D3]
    out = run_crm(home_b, airflow_home, url_b, "backfill", "--start", D1.isoformat(), "--end", D2.isoformat(),
                  "--reprocess").stdout
    assert "2 run, 0 already done (skipped)" in out
    assert run_dates(url_b) == [D1, D2, D3]

    for table in AS_OF_TABLES:
        a, b = as_of_rows(warehouse_url, table, [D1, D2]), as_of_rows(url_b, table, [D1, D2])
        assert a.height > 0 or table == "kpi_alert", table
        try:
            assert_frame_equal(a, b, check_exact=True)
        except AssertionError as difference:
            raise AssertionError(f"{table} differs between the daily runs and the backfill: {difference}") from None
    # What as-of means here: when D2 was backfilled, B already held D3, yet D2's dynamic thresholds
    # saw one prior day (D1) in both warehouses, not D3 too.
    dynamic = as_of_rows(url_b, "kpi_threshold_check", [D1, D2]).filter(pl.col("threshold_kind") == "dynamic")
    assert dynamic.filter(pl.col("as_of_date") == D2)["trailing_days"].max() == 1  # 0 for a KPI null on D1
    assert dynamic.filter(pl.col("as_of_date") == D1)["trailing_days"].unique().to_list() == [0]
    # The reprocessed days took their own batch back from the run of D3.
    batches = read_table(url_b, "SELECT batch_date, run_date FROM etl_batch WHERE source = 'orders'")
    assert batches.filter(pl.col("batch_date").is_in([D1, D2]))["run_date"].sort().to_list() == [D1, D2]


def test_a_backfill_resumes_after_a_kill_or_a_failed_date(crm_home, warehouse_url, sample_dir, airflow_home):
    (crm_home / "sample").unlink()
    shutil.copytree(sample_dir, crm_home / "sample")  # this test breaks an export, so it needs its own copy
    args = ["backfill", "--start", R[0].isoformat(), "--end", R[-1].isoformat()]
    logs = {day: crm_home / "logs" / f"crm_run_{day.isoformat()}.log" for day in R}

    # Killed (SIGKILL) just after the first date committed, as by a kill from outside.
    killed = run_crm(crm_home, airflow_home, warehouse_url, *args, check=False,
                     extra_env={"CRM_FAILPOINT": "backfill:after_date"})
    assert killed.returncode == -9 and run_dates(warehouse_url) == [R[0]]
    first_log_size = logs[R[0]].stat().st_size

    # The next day's export breaks: the backfill skips the done day, stops at the broken one, says why.
    export = crm_home / "sample" / "orders" / f"orders_{R[1].isoformat()}.csv"
    good = export.read_text()
    export.write_text(good.replace("order_id", "order_ref", 1))
    failed = run_crm(crm_home, airflow_home, warehouse_url, *args, check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"crm backfill stopped at {R[1]}" in failed.stderr
    assert "SchemaDriftError" in failed.stderr and str(logs[R[1]]) in failed.stderr
    assert "0 run, 1 already done (skipped) before it" in failed.stderr
    assert run_dates(warehouse_url) == [R[0]]

    # Fixed: it resumes at the failed day and finishes; the done day is not run again.
    export.write_text(good)
    done = run_crm(crm_home, airflow_home, warehouse_url, *args)
    assert "2 run, 1 already done (skipped)" in done.stdout
    assert run_dates(warehouse_url) == R and logs[R[0]].stat().st_size == first_log_size
    everything = {name: table_checksum(warehouse_url, name) for name in warehouse_objects()}

    # Nothing left to do; --reprocess redoes the days, which changes no table.
    assert "0 run, 3 already done (skipped)" in run_crm(crm_home, airflow_home, warehouse_url, *args).stdout
    sizes = {day: logs[day].stat().st_size for day in R[1:]}
    again = run_crm(crm_home, airflow_home, warehouse_url, "backfill", "--start", R[1].isoformat(), "--end",
                    R[2].isoformat(), "--reprocess")
    assert "2 run, 0 already done (skipped)" in again.stdout
    assert all(logs[day].stat().st_size > sizes[day] for day in R[1:])
    assert {name: table_checksum(warehouse_url, name) for name in warehouse_objects()} == everything
