"""Smoke test of the benchmark harness (bench/) at its tiny XS size: every section runs, the pandas
baseline computes the same scores as ours, and the report renders. It times nothing and asserts no
speed: the figures of a run this small are start-up costs. PostgreSQL, lifetimes and Airflow are
left out (their own tests cover them; the lifetimes virtualenv takes a minute to build)."""
from __future__ import annotations

import argparse

import pytest

from bench import measure, report, run

# One worker for the module: its fixture runs the harness (~50 s), once per worker that uses it.
pytestmark = [pytest.mark.benchmark, pytest.mark.xdist_group("benchmark_harness")]


@pytest.fixture(scope="module")
def xs_results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("bench")
    args = argparse.Namespace(repeats=1, no_postgres=True, airflow=[], lifetimes_python=None, skip=[],
                              score_memory_cap_gb=4.0)
    return {"started_at": "test", "machine": report.machine(), "total_seconds": 0.0,
            "sizes": {"XS": run.bench_size("XS", out, args)}}


def test_every_section_runs(xs_results):
    xs = xs_results["sizes"]["XS"]
    failed = {name: part["error"] for name, part in xs.items() if isinstance(part, dict) and "error" in part}
    assert not failed
    assert set(xs) >= {"pipeline", "extract_parquet", "scoring"}


def test_pipeline_stages_account_for_every_row(xs_results):
    xs = xs_results["sizes"]["XS"]
    stages = report.stages(xs["pipeline"], xs["extract_parquet"])
    raw = sum(xs["workload"].values())
    assert stages["extract_csv"]["rows"] == stages["extract_parquet"]["rows"] == raw
    assert stages["end_to_end"]["peak_rss_mb"] >= max(s["peak_rss_mb"] for s in stages.values())
    assert all(s["seconds"] > 0 for s in stages.values())


def test_pandas_baseline_agrees_with_our_scoring(xs_results):
    agreement = xs_results["sizes"]["XS"]["scoring"]["agreement"]
    assert agreement["customers"] == agreement["customers_other"] > 0
    assert {k: v for k, v in agreement.items() if k not in ("customers", "customers_other") and v} == {}


def test_report_renders_ratios_and_stage_table(xs_results):
    markdown = report.render(xs_results, report.summarize(xs_results))
    assert "(a) ours / lower bound" in markdown and "**end to end**" in markdown


def test_disk_footprint_is_reported(xs_results):
    summary = report.summarize(xs_results)["XS"]
    layers = summary["disk"]["layers_gb"]
    assert {"raw", "landing", "staging", "warehouse"} <= set(layers)
    assert summary["disk"]["total_gb"] == sum(layers.values()) > 0
    assert "Disk after the run" in report.render(xs_results, report.summarize(xs_results))


def test_a_job_is_stopped_when_the_disk_is_nearly_full(tmp_path, monkeypatch):
    monkeypatch.setattr(measure, "MIN_FREE_DISK_GB", float(2**40))  # more free space than any disk has
    args = {"_result_dir": str(tmp_path), "kind": "orders", "run_date": "2025-12-31"}
    with pytest.raises(measure.DiskNearlyFull, match="under the .* GB floor"):
        measure.run_job("extract", args, env={"CRM_HOME": str(tmp_path)})
