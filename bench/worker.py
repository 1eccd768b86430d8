"""The measured jobs, each run in its own interpreter by bench.measure.run_job:

    python -m bench.worker JOB '<json args>' RESULT_FILE

Pipeline stages call the same functions as the crm_daily tasks (pipeline.tasks), without Airflow.
A job writes {"phases": {label: {seconds, peak_rss_mb, calls}}, ...its own figures} to RESULT_FILE.
"""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import date
from pathlib import Path

from bench.measure import Meter

METER = Meter()
METER.begin("setup")  # imports, and any time between phases, count as setup, never as a measured phase


def _run_date(args: dict) -> date:
    return date.fromisoformat(args["run_date"])


# --- pipeline stages ------------------------------------------------------------------------


def job_extract(args: dict) -> dict:
    from pipeline import tasks

    with METER.phase("extract"):
        extracted = tasks.extract_source(args["kind"], _run_date(args))
    return {"result": extracted, "rows": extracted["rows"]}


def job_stage(args: dict) -> dict:
    """stage_source; the GX checkpoint inside it is timed apart as `validate`, the rest (reading the
    landing file, standardizing, quarantine, writing the staging lake) as `standardize`."""
    from pipeline import stage, tasks

    METER.instrument(stage, "run_suite", "validate")
    METER.instrument(stage, "build_data_docs", "validate")  # once per source, after its chunks' checkpoints
    with METER.phase("standardize"):
        staged = tasks.stage_source(args["kind"], args["extracted"], _run_date(args))
    return {"result": staged, "rows": staged["raw"]}


def job_score(args: dict) -> dict:
    """score_day; reading the staged history and the scoring are timed apart, the rest is writing. A
    history past CRM_SCORE_SHARD_LINES is scored shard by shard (scores_in_shards), which reads its
    own inputs: its whole time counts as scoring."""
    from pipeline import tasks

    METER.instrument(tasks, "staged_inputs", "score_read")
    METER.instrument(tasks, "daily_scores", "daily_scores")
    METER.instrument(tasks, "scores_in_shards", "daily_scores")
    with METER.phase("score_write"):
        scored = tasks.score_day(_run_date(args))
    return {"result": scored, "rows": scored["customers"]}


def job_load(args: dict) -> dict:
    from pipeline import tasks

    with METER.phase("load"):
        loaded = tasks.load_day(_run_date(args), args["staged"], args["scored"])
    return {"result": loaded, "rows": sum(loaded.values())}


# --- scoring comparisons ----------------------------------------------------------------------


def _repeat(label: str, repeats: int, work):
    """Runs work() `repeats` times under one phase label; returns the last result and every time."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        with METER.phase(label):
            result = work()
        seconds.append(time.perf_counter() - started)
    return result, seconds


def job_score_core(args: dict) -> dict:
    """RFM + pyramid + historic CLV from the staged orders file: ours, the bare lower bound or pandas."""
    from bench import scoring

    if args["impl"] == "pandas":
        from bench.rfm_pandas import pandas_core_scores as compute  # pandas is imported by this job only
    else:
        compute = {"ours": scoring.our_core_scores, "lower_bound": scoring.lower_bound_rfm}[args["impl"]]
    result, seconds = _repeat("compute", args["repeats"], lambda: compute(args["file"], _run_date(args)))
    if args.get("out"):
        scoring.write_result(result, args["out"])
    return {"seconds": seconds, "rows": len(result)}


def job_daily_scores(args: dict) -> dict:
    """daily_scores alone on in-memory inputs (issue 4's figure), read time apart."""
    from pipeline.scoring.config import load_scoring_config
    from pipeline.scoring.daily import daily_scores, staged_inputs
    from pipeline.settings import load_settings

    settings = load_settings()
    with METER.phase("score_read"):
        inputs = staged_inputs(settings.lake("staging"), _run_date(args))
    config = load_scoring_config(settings.scoring_file)
    tables, seconds = _repeat("daily_scores", args["repeats"],
                              lambda: daily_scores(**inputs, as_of=_run_date(args), config=config))
    return {"seconds": seconds, "rows": tables["customer_score_daily"].height,
            "order_lines": inputs["orders"].height if inputs["orders"] is not None else 0}


# --- CLV models -------------------------------------------------------------------------------


def job_clv_ours(args: dict) -> dict:
    from bench import clv_vs_lifetimes as clv

    summary = clv.load_summary(args["summary"])
    bgnbd_seconds = []

    def fit():
        fitted = clv.fit_ours(summary)
        bgnbd_seconds.append(fitted[0].elapsed_seconds)  # measured inside fit_bgnbd
        return fitted

    fitted, seconds = _repeat("fit", args["repeats"], fit)
    predicted, predict_seconds = _repeat("predict", args["repeats"], lambda: clv.predict_ours(fitted, summary))
    clv.save_predictions(predicted, args["predictions"])
    return {"params": clv.params_of(fitted), "fit_seconds": seconds, "bgnbd_fit_seconds": bgnbd_seconds,
            "predict_seconds": predict_seconds, "diagnostics": clv.diagnostics_of(fitted),
            "rows": len(summary["frequency"])}


# --- PostgreSQL load --------------------------------------------------------------------------


def job_pg_load(args: dict) -> dict:
    """Loads the same staged rows `repeats` times into an emptied table; checks the row count."""
    from bench import pg_load

    with METER.phase("prepare"):
        prepared = pg_load.prepare(args["impl"], args["url"], pg_load.read_frame(args["file"], args.get("rows")))
    seconds = []
    for _ in range(args["repeats"]):
        pg_load.truncate(args["url"])
        started = time.perf_counter()
        with METER.phase("load"):
            loaded = pg_load.load(args["impl"], args["url"], prepared)
        seconds.append(time.perf_counter() - started)
        if pg_load.count(args["url"]) != loaded:
            raise AssertionError(f"{args['impl']}: {loaded} rows loaded but the table holds a different count")
    return {"seconds": seconds, "rows": loaded, "table": pg_load.order_table()}


JOBS = {name.removeprefix("job_"): fn for name, fn in globals().items() if name.startswith("job_")}


def main() -> None:
    job, args, result_file = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)  # ~200 INFO lines on import
    figures = JOBS[job](args)
    METER.end()
    result_file.write_text(json.dumps({**figures, "phases": METER.as_dict()}, default=str))
    sys.stdout.flush(), sys.stderr.flush()
    # Skip interpreter teardown: after GX is imported DuckDB prints pages of 'leaked instance' reports.
    os._exit(0)


if __name__ == "__main__":
    main()
