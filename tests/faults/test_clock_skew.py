"""Clock skew: the host exporting orders runs three hours ahead, so the app channel's last orders of
the day are stamped after the end of the data interval.

- In day files, those rows belong to the day's batch, but their stamps lie after the interval: they
  are quarantined as `dated_after_interval` (raw = accepted + quarantined; a larger share fails the
  batch at max_quarantine_share). A source known to run ahead sets `max_clock_skew_hours`; re-running
  the date then accepts them, with the stamps they carry, so they count from the day those name:
  the scores as of the batch's own day are the same either way.
- In one export holding many days, rows are batched by the date of their stamp: a skewed row is
  not in the run of its real day at all, but in the next day's batch, which the next run lands.
"""
from __future__ import annotations

import shutil
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from pipeline.settings import PROJECT_ROOT
from pipeline.sources import SourceConfigError, load_sources
from tests.conftest import SAMPLE_END, read_table
from tests.faults.conftest import Warehouse, copy_warehouse, source_records, warehouse_rows, warehouse_state
from tests.faults.driver import run_day

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]
SKEW_HOURS = 3
DAY_BEFORE = date(2025, 12, 30)


def stamped_after(frame: pl.DataFrame, day: date) -> pl.DataFrame:
    """Rows stamped after the end of the data interval [day, day + 1) (the pipeline's bound is inclusive)."""
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)
    return frame.filter(pl.col("ordered_at").str.to_datetime(time_zone="UTC") > end)


def skew(frame: pl.DataFrame, day: date, hours: int = SKEW_HOURS) -> pl.DataFrame:
    """The app channel's orders of `day` as a clock `hours` ahead stamps them."""
    stamp = pl.col("ordered_at").str.to_datetime(time_zone="UTC")
    hit = (pl.col("channel") == "app") & (stamp.dt.date() == day)
    ahead = (stamp + pl.duration(hours=hours)).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return frame.with_columns(pl.when(hit).then(ahead).otherwise(pl.col("ordered_at")).alias("ordered_at"))


def sources_file(path: Path, orders_extra: str = "", orders_path: str | None = None) -> Path:
    """config/sources/sample.yml with the orders source changed."""
    text = (PROJECT_ROOT / "config" / "sources" / "sample.yml").read_text(encoding="utf-8")
    old = "    path: orders/orders_{date}.csv\n"
    assert old in text
    text = text.replace(old, f"    path: {orders_path or 'orders/orders_{date}.csv'}\n{orders_extra}")
    path.write_text(text, encoding="utf-8")
    return path


def rejected_as_future(url: str) -> int:
    return read_table(url, "SELECT count(*) AS n FROM quarantine WHERE reason_code = 'dated_after_interval'")["n"][0]


def test_day_file_rows_stamped_after_the_interval_are_quarantined_then_accepted_with_a_tolerance(
        at_mid, references, request, tmp_path, tally):
    warehouse = at_mid("duckdb", own_sample=True)
    path = warehouse.sample / "orders" / f"orders_{SAMPLE_END}.csv"
    skewed = skew(pl.read_csv(path, infer_schema=False), SAMPLE_END)
    skewed.write_csv(path)
    late = stamped_after(skewed, SAMPLE_END).height
    assert 0 < late < skewed.height  # part of the batch
    run_day(warehouse.home, warehouse.url, SAMPLE_END)
    assert rejected_as_future(warehouse.url) == late
    strict = warehouse_state(warehouse.url)
    rows_in = source_records(warehouse.sample, SAMPLE_END)
    tally("clock 3 h ahead in a day file: quarantined", warehouse, rows_in, warehouse_rows(warehouse.url))
    # The source is declared as running ahead; its date is re-run.
    tolerant = sources_file(tmp_path / "sources.yml", f"    max_clock_skew_hours: {SKEW_HOURS}\n")
    run_day(warehouse.home, warehouse.url, SAMPLE_END, tolerant)
    assert rejected_as_future(warehouse.url) == 0
    recovered = warehouse_state(warehouse.url)
    # Exactly what a run that knew the skew from the start gives.
    clean = copy_warehouse(references("duckdb").mid, tmp_path / "clean", request, own_sample=True)
    (clean.sample / "orders" / path.name).write_bytes(path.read_bytes())
    run_day(clean.home, clean.url, SAMPLE_END, tolerant)
    assert recovered == warehouse_state(clean.url)
    # Stamped on the next day, the rows count from that day: no score as of this one moved.
    for table in ("customer_score_daily", "customer_pyramid_daily", "kpi_daily"):
        assert recovered[table] == strict[table], table
    assert recovered["fct_order_line"] != strict["fct_order_line"]
    tally("clock 3 h ahead in a day file: accepted with max_clock_skew_hours", warehouse, rows_in,
          warehouse_rows(warehouse.url))


def test_export_rows_stamped_after_the_interval_wait_for_their_own_day(tmp_path, sample_dir, tally):
    """One orders export holding every day; the day before SAMPLE_END is skewed into SAMPLE_END."""
    sample = tmp_path / "sample"
    shutil.copytree(sample_dir, sample, ignore=lambda folder, names: names if folder.endswith("orders") else [])
    original = pl.concat(pl.read_csv(f, infer_schema=False) for f in sorted((sample_dir / "orders").glob("*.csv")))
    export = skew(original, DAY_BEFORE)
    export.write_csv(sample / "orders_export.csv")
    event_day = pl.col("ordered_at").str.to_datetime(time_zone="UTC").dt.date()
    moved = (original.select(event_day.alias("was")).hstack(export.select(event_day.alias("is")))
             .filter((pl.col("was") == DAY_BEFORE) & (pl.col("is") == SAMPLE_END)).height)
    assert moved > 0
    config = sources_file(tmp_path / "sources.yml", orders_path="orders_export.csv")
    daily, one_shot = (_home(tmp_path / name, sample) for name in ("daily", "one_shot"))
    run_day(daily.home, daily.url, DAY_BEFORE, config)
    landed = read_table(daily.url, "SELECT sum(raw_rows) AS n FROM etl_batch WHERE source = 'orders'")["n"][0]
    assert landed == export.filter(event_day <= DAY_BEFORE).height  # the skewed rows wait in the export
    run_day(daily.home, daily.url, SAMPLE_END, config)
    by_day = dict(read_table(daily.url, "SELECT batch_date, raw_rows FROM etl_batch WHERE source = 'orders'").rows())
    assert by_day[SAMPLE_END] == export.filter(event_day == SAMPLE_END).height  # they came with their own day
    assert by_day[SAMPLE_END] == original.filter(event_day == SAMPLE_END).height + moved
    assert rejected_as_future(daily.url) == 0
    # The daily runs and one run over the same history agree.
    run_day(one_shot.home, one_shot.url, SAMPLE_END, config)
    daily_state, one_shot_state = warehouse_state(daily.url), warehouse_state(one_shot.url)
    for table in ("stg_order_line", "fct_order_line", "fct_order", "quarantine"):
        assert daily_state[table] == one_shot_state[table], table
    as_of = "SELECT * FROM customer_score_daily WHERE as_of_date = :d ORDER BY customer_id"
    assert read_table(daily.url, as_of, d=SAMPLE_END).equals(read_table(one_shot.url, as_of, d=SAMPLE_END))
    rows_in = source_records(sample, SAMPLE_END) | {"orders": export.filter(event_day <= SAMPLE_END).height}
    tally("clock 3 h ahead in an export: deferred to the next day", daily, rows_in, warehouse_rows(daily.url))


def _home(path: Path, sample: Path) -> Warehouse:
    path.mkdir()
    (path / "sample").symlink_to(sample)
    return Warehouse(path, f"duckdb:///{path / 'warehouse.duckdb'}", "duckdb")


@pytest.mark.parametrize("hours", ["-1", "49"])
def test_a_clock_skew_tolerance_out_of_range_is_a_config_error(tmp_path, monkeypatch, hours):
    monkeypatch.setenv("CRM_HOME", str(tmp_path))  # sample.yml's base_dir
    with pytest.raises(SourceConfigError, match=r"orders\.max_clock_skew_hours must be within \[0, 48\]"):
        load_sources(sources_file(tmp_path / "sources.yml", f"    max_clock_skew_hours: {hours}\n"))
