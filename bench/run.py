"""`make bench`: the benchmark harness. Runs every measurement of docs/benchmarks.md on each size,
side by side in one run, and writes var/bench/results.json and var/bench/results.md.

    .venv/bin/python -m bench.run                 # S and M
    .venv/bin/python -m bench.run --sizes S       # a quick run
    .venv/bin/python -m bench.run --large         # S, M and L (100M order lines)

Every measured piece runs in its own child process (bench/worker.py); a section that fails is
recorded as failed with its log, and the others still run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from bench import report, workload
from bench.clv_vs_lifetimes import run as run_clv
from bench import measure
from bench.measure import ROOT, JobFailed, run_job
from pipeline.kinds import KINDS

log = logging.getLogger("bench")
RUN_DATE = workload.END_DATE.isoformat()
STAGE_ORDER = ("customers", "orders", "surveys", "complaints")  # the DAG's referential order
LIFETIMES_REQUIREMENTS = ROOT / "bench" / "lifetimes-requirements.txt"
# (c) on the 1M customers for M and L; S keeps the run short.
CLV_CUSTOMERS = {"XS": 2_000, "S": 100_000, "M": 1_000_000, "L": 1_000_000}
TO_SQL_ROWS = 1_000_000
STAGE_CHUNK_ROWS = 1_500_000  # landed rows per stage_source run when the whole history does not fit  # pandas to_sql writes ~40k rows/s: one million is enough for a rate


class Bench:
    """One size's run: where it writes, its log, and the child-job launcher."""

    def __init__(self, w: workload.Workload, bench_dir: Path):
        self.w, self.dir = w, bench_dir
        self.log = w.root / "bench.log"
        self.log.write_text("")

    def env(self, home: Path, fmt: str = "csv") -> dict[str, str]:
        return {"CRM_HOME": str(home), "CRM_SOURCES": str(self.w.sources(fmt)), "CRM_PII_SALT": "bench",
                "CRM_WAREHOUSE_URL": f"duckdb:///{home / 'warehouse.duckdb'}"}

    def job(self, name: str, args: dict, env: dict | None = None) -> dict:
        return run_job(name, args | {"run_date": RUN_DATE, "_result_dir": str(self.w.root)}, env=env, log=self.log)

    def fresh_home(self, name: str) -> Path:
        home = self.w.root / name
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        return home


# --- sections -------------------------------------------------------------------------------------


def pipeline_run(b: Bench) -> dict:
    """The crm_daily tasks' functions in DAG order, one process per task as Airflow runs them:
    extract each source, stage each (standardize + GX validate), score, load (embedded DuckDB).
    A task that fails ends the run; what was measured up to it is kept, with `stopped_at`."""
    env = b.env(b.fresh_home("home-csv"))
    started = time.perf_counter()
    out: dict = {"extract": {}, "stage": {}}
    try:
        for kind in KINDS:
            out["extract"][kind] = b.job("extract", {"kind": kind}, env)
        for kind in STAGE_ORDER:
            out["stage"][kind] = stage(b, kind, out["extract"][kind]["result"], env)
        out["score"] = b.job("score", {}, env)
        out["load"] = b.job("load", {"staged": [out["stage"][k]["result"] for k in KINDS],
                                     "scored": out["score"]["result"]}, env)
    except JobFailed as exc:
        task = "score" if "score" not in out and len(out["stage"]) == len(KINDS) else "load" if "score" in out else "stage"
        out["stopped_at"] = {"task": task, "error": str(exc), "rss_mb": getattr(exc, "rss_mb", None)}
        log.error("pipeline stopped at %s: %s", task, exc)
    return out | {"wall_seconds": time.perf_counter() - started, "disk_gb": disk_footprint(b.w.raw, Path(env["CRM_HOME"]))}


def disk_footprint(raw: Path, home: Path) -> dict[str, float]:
    """GB on disk after the run: the raw exports, each lake layer under CRM_HOME, and the warehouse."""
    def size(path: Path) -> float:
        files = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        return sum(f.stat().st_size for f in files if f.is_file()) / 2**30

    layers = {"raw": size(raw), "warehouse": size(home / "warehouse.duckdb")}
    layers |= {d.name: size(d) for d in sorted(home.iterdir()) if d.is_dir()}
    return {name: round(gb, 3) for name, gb in layers.items() if gb}


def daily_scores_alone(b: Bench, cap_gb: float) -> dict:
    """Issue 4's figure when the score task did not fit under the cap: staged_inputs + daily_scores in
    one process under a higher cap (its own peak RSS says how much it needs)."""
    saved = measure.MEMORY_CAP_MB
    measure.MEMORY_CAP_MB = cap_gb * 1024
    try:
        return b.job("daily_scores", {"repeats": 1}, b.env(b.w.root / "home-csv"))
    finally:
        measure.MEMORY_CAP_MB = saved


def stage(b: Bench, kind: str, extracted: dict, env: dict) -> dict:
    """stage_source over the whole landed history, as the task does; if that job fails (e.g. passes the
    memory cap), the same function over chunks of batch days, so the later stages still get measured."""
    try:
        return b.job("stage", {"kind": kind, "extracted": extracted}, env)
    except JobFailed as exc:
        log.warning("stage %s failed in one piece (%s); staging it in chunks of batch days", kind, exc)
        return stage_in_chunks(b, kind, extracted, env) | {"one_piece_error": str(exc),
                                                           "one_piece_rss_mb": getattr(exc, "rss_mb", None)}


def _chunks(batches: list[dict], rows: int) -> list[list[dict]]:
    """Consecutive batch days of about `rows` landed rows each."""
    chunks, current = [], []
    for batch in batches:
        current.append(batch)
        if sum(x["rows"] for x in current) >= rows:
            chunks, current = [*chunks, current], []
    return [*chunks, current] if current else chunks


def stage_in_chunks(b: Bench, kind: str, extracted: dict, env: dict) -> dict:
    """One stage_source job per chunk of batch days, as a backfill in several runs stages them; a chunk
    that still does not fit is halved. Each run writes its audit files (reconciliation, GX results)
    under the same run date, so they are gathered after each chunk and written back together."""
    home, landed = Path(env["CRM_HOME"]), pl.scan_parquet(extracted["path"])
    audits = {name: [] for name in ("reconciliation", "dq_results")}
    jobs, todo = [], _chunks(extracted["batches"], STAGE_CHUNK_ROWS)
    while todo:
        batches = todo.pop(0)
        path = Path(extracted["path"]).with_name(f"chunk-{len(jobs)}.parquet")
        landed.filter(pl.col("_batch_date").is_in([x["batch_date"] for x in batches])).sink_parquet(path)
        part = extracted | {"path": str(path), "rows": sum(x["rows"] for x in batches), "batches": batches}
        try:
            jobs.append(b.job("stage", {"kind": kind, "extracted": part}, env))
        except measure.MemoryCapExceeded:
            if len(batches) == 1:
                raise
            log.warning("stage %s: %d batch days still too large; halving", kind, len(batches))
            todo[:0] = [batches[: len(batches) // 2], batches[len(batches) // 2:]]
            continue
        for name, frames in audits.items():
            frames.append(pl.read_parquet(home / name / kind / f"run_date={RUN_DATE}" / "part.parquet"))
    for name, frames in audits.items():
        pl.concat(frames).write_parquet(home / name / kind / f"run_date={RUN_DATE}" / "part.parquet")
    return merge_jobs(jobs)


def merge_jobs(jobs: list[dict]) -> dict:
    """Chunk jobs as one: times and counts added, peaks the largest."""
    phases = {}
    for job in jobs:
        for label, p in job["phases"].items():
            into = phases.setdefault(label, {"seconds": 0.0, "peak_rss_mb": 0.0, "calls": 0})
            into["seconds"] += p["seconds"]
            into["peak_rss_mb"] = max(into["peak_rss_mb"], p["peak_rss_mb"])
            into["calls"] += p["calls"]
    results = [job["result"] for job in jobs]
    result = results[0] | {k: sum(r[k] for r in results) for k in ("raw", "accepted", "quarantined")}
    result["batch_dates"] = [d for r in results for d in r["batch_dates"]]
    return {"result": result, "rows": result["raw"], "phases": phases, "chunks": len(jobs),
            "process_seconds": sum(job["process_seconds"] for job in jobs),
            "disk_peak_gb": max(job["disk_peak_gb"] for job in jobs)}


def extract_parquet(b: Bench) -> dict:
    """Extraction again, from the Parquet copy of the same exports."""
    env = b.env(b.fresh_home("home-parquet"), "parquet")
    return {kind: b.job("extract", {"kind": kind}, env) for kind in KINDS}


def staged_orders_file(b: Bench) -> Path:
    """Every staged order line in one Parquet file: the common input of the scoring comparisons."""
    path = b.w.root / "orders_staged.parquet"
    files = sorted((b.w.root / "home-csv" / "staging" / "orders").glob("batch_date=*/part.parquet"))
    pl.scan_parquet(files).sink_parquet(path)
    return path


def scoring_comparison(b: Bench, orders: Path, repeats: int) -> dict:
    """(a) ours vs one scan + group-by, (b) ours vs pandas; same file, each in its own process."""
    env = b.env(b.w.root / "home-csv")
    runs = {}
    for impl, n in (("ours", repeats), ("lower_bound", repeats), ("pandas", max(1, repeats - 1))):
        out = str(b.w.root / f"core-{impl}.parquet") if impl != "lower_bound" else None
        runs[impl] = b.job("score_core", {"impl": impl, "file": str(orders), "repeats": n, "out": out}, env)
    from bench.scoring import agreement

    return runs | {"agreement": agreement(b.w.root / "core-ours.parquet", b.w.root / "core-pandas.parquet")}


def clv_comparison(b: Bench, lifetimes_python: str, repeats: int) -> dict:
    return run_clv(CLV_CUSTOMERS[b.w.size], lifetimes_python, b.w.root, repeats=repeats, log=b.log)


def postgres_load(b: Bench, orders: Path) -> dict:
    """(e) our loader vs pandas to_sql into the same table of a private PostgreSQL cluster: both on
    the same first million staged lines; then ours, ADBC and the server's ceiling (bare binary COPY of
    pre-encoded rows, in one stream and in two at once) on all of them."""
    from tests.support.pg_cluster import PostgresCluster

    with PostgresCluster(dbname="bench") as pg:
        env = {"CRM_PII_SALT": "bench"}
        args = {"url": pg.url, "file": str(orders)}
        return {
            "ours_all": b.job("pg_load", args | {"impl": "ours", "repeats": 1}, env),
            "adbc_all": b.job("pg_load", args | {"impl": "adbc", "repeats": 1}, env),
            "ceiling_all": b.job("pg_load", args | {"impl": "copy_only", "repeats": 1}, env),
            "ceiling_parallel_all": b.job("pg_load", args | {"impl": "copy_parallel", "repeats": 1}, env),
            "ours": b.job("pg_load", args | {"impl": "ours", "rows": TO_SQL_ROWS, "repeats": 2}, env),
            "pandas": b.job("pg_load", args | {"impl": "pandas", "rows": TO_SQL_ROWS, "repeats": 1}, env),
        }


_CRM_RUN_LINE = re.compile(r"crm_daily \S+: ([\d.]+) s wall, peak RSS ([\d,]+) MB")


def airflow_run(b: Bench) -> dict:
    """The same day through Airflow: `crm run` (dag.test in one process), its own wall and RSS line."""
    env = b.env(b.fresh_home("home-airflow")) | {"AIRFLOW_HOME": str(b.dir / "airflow")}
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).with_name("crm")), "run", "--ds", RUN_DATE], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    with b.log.open("a") as f:
        f.write(f"\n=== crm run\n{done.stdout}{done.stderr}")
    match = _CRM_RUN_LINE.search(done.stdout)
    if done.returncode or not match:
        raise RuntimeError(f"crm run failed (exit {done.returncode}); see {b.log}")
    return {"wall_seconds": float(match.group(1)), "peak_rss_mb": float(match.group(2).replace(",", "")),
            "process_seconds": wall}


# --- orchestration --------------------------------------------------------------------------------


def section(results: dict, name: str, fn, *args):
    """Runs one section; a failure is recorded (with where to look) and the run goes on."""
    log.info("%s ...", name)
    started = time.perf_counter()
    try:
        results[name] = fn(*args)
    except Exception as exc:  # one broken section must not hide the others' figures
        results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        log.error("%s failed: %s\n%s", name, exc, traceback.format_exc())
    log.info("%s done in %.0f s", name, time.perf_counter() - started)
    return results[name]


def bench_size(size: str, bench_dir: Path, args: argparse.Namespace) -> dict:
    started = time.perf_counter()
    w = workload.prepare(size, bench_dir)
    b = Bench(w, bench_dir)
    results = {"workload": w.counts, "setup_seconds": time.perf_counter() - started}
    if "pipeline" not in args.skip:
        section(results, "pipeline", pipeline_run, b)
        if results["pipeline"].get("stopped_at", {}).get("task") == "score":
            section(results, "daily_scores", daily_scores_alone, b, args.score_memory_cap_gb)
    if "extract_parquet" not in args.skip:
        section(results, "extract_parquet", extract_parquet, b)
    compare = "scoring" not in args.skip or not (args.no_postgres or "postgres" in args.skip)
    if compare and any((w.root / "home-csv" / "staging" / "orders").glob("batch_date=*/part.parquet")):  # even if a later stage failed
        orders = staged_orders_file(b)
        if "scoring" not in args.skip:
            section(results, "scoring", scoring_comparison, b, orders, args.repeats)
        if not args.no_postgres and "postgres" not in args.skip:
            section(results, "postgres", postgres_load, b, orders)
    if args.lifetimes_python and "clv" not in args.skip:
        section(results, "clv", clv_comparison, b, args.lifetimes_python, args.repeats)
    if size in args.airflow:
        section(results, "airflow", airflow_run, b)
    results["bench_seconds"] = time.perf_counter() - started
    return results


def ensure_lifetimes_venv(path: Path) -> str:
    """lifetimes 0.11.3 in its own virtualenv (it must not share the pipeline's); rebuilt only when
    bench/lifetimes-requirements.txt changes."""
    python = path / "bin" / "python"
    stamp = path / ".requirements-sha256"
    wanted = hashlib.sha256(LIFETIMES_REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return str(python)
    log.info("creating the lifetimes virtualenv at %s", path)
    shutil.rmtree(path, ignore_errors=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(path)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                    str(LIFETIMES_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)
    return str(python)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M"], choices=list(workload.SIZES))
    parser.add_argument("--large", action="store_true", help="add L (100M order lines); needs ~16 GB and long")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the comparisons (best counts)")
    parser.add_argument("--airflow", nargs="*", default=["S"], help="sizes also run through Airflow (`crm run`)")
    parser.add_argument("--no-postgres", action="store_true", help="skip (e), the PostgreSQL load")
    parser.add_argument("--skip", nargs="*", default=[], choices=["pipeline", "extract_parquet", "scoring", "postgres", "clv"],
                        help="sections to leave out (e.g. measured in an earlier run; bench.report merges runs)")
    parser.add_argument("--lifetimes-python", help="interpreter with lifetimes 0.11.3 (default: build var/bench/lifetimes-venv)")
    parser.add_argument("--memory-cap-gb", type=float, default=12.0,
                        help="stop a job whose RSS passes this (the machine is shared); 0 = no cap")
    parser.add_argument("--score-memory-cap-gb", type=float, default=16.0,
                        help="cap for measuring daily_scores alone when the score task passed --memory-cap-gb")
    parser.add_argument("--min-free-disk-gb", type=float, default=measure.MIN_FREE_DISK_GB,
                        help="stop a job when the disk under --out has less free space than this")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    args = parser.parse_args()
    measure.MEMORY_CAP_MB = args.memory_cap_gb * 1024 if args.memory_cap_gb else float("inf")
    measure.MIN_FREE_DISK_GB = args.min_free_disk_gb
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    bench_dir = args.out.resolve()
    bench_dir.mkdir(parents=True, exist_ok=True)
    args.lifetimes_python = args.lifetimes_python or ensure_lifetimes_venv(bench_dir / "lifetimes-venv")
    sizes = [*args.sizes, *(["L"] if args.large and "L" not in args.sizes else [])]

    started = time.perf_counter()
    results = {"started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": report.machine(),
               "sizes": {}}
    for size in sizes:
        results["sizes"][size] = bench_size(size, bench_dir, args)
        results["total_seconds"] = time.perf_counter() - started
        summary = report.summarize(results)  # written after every size: a later one may take hours
        (bench_dir / "results.json").write_text(json.dumps(results | {"summary": summary}, indent=2, default=str))
    markdown = report.render(results, summary)
    (bench_dir / "results.md").write_text(markdown)
    print(markdown)
    print(f"results: {bench_dir / 'results.json'}, {bench_dir / 'results.md'}")


if __name__ == "__main__":
    main()
