"""Great Expectations contracts, run on the standardized frame handed over as pandas via Arrow.

GX 1.x has no Polars support and its DuckDB SQL path silently returns nothing, so every
warehouse validates the same way: in memory, with COMPLETE results for row-level quarantine.
Only the columns the suite reads are converted; the others reach GX as names over null arrays.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import sys
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import polars as pl

from pipeline.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
ROW_ID = "_rid"
RESULT_SCHEMA = {"expectation": pl.String, "column_name": pl.String, "is_success": pl.Boolean,
                 "unexpected_count": pl.Int64, "element_count": pl.Int64}
_DEFAULT_REASONS = {
    "expect_column_values_to_not_be_null": "missing_value",
    "expect_column_values_to_be_between": "out_of_range",
    "expect_column_values_to_be_in_set": "not_in_accepted_values",
    "expect_column_values_to_match_regex": "bad_format",
    "expect_compound_columns_to_be_unique": "duplicate_key",
    "expect_column_values_to_be_unique": "duplicate_key",
    "expect_column_pair_values_a_to_be_greater_than_b": "inconsistent_values",
}


class ContractError(ValueError):
    """A table-level expectation failed (e.g. schema drift): the whole batch is unusable."""


@dataclass(frozen=True)
class RowFailure:
    expectation: str
    column: str | None
    reason_code: str
    row_ids: list[int]


@dataclass(frozen=True)
class ValidationReport:
    results: pl.DataFrame  # one row per expectation: expectation, column_name, is_success, unexpected_count, element_count
    failures: list[RowFailure]
    result_id: object | None = None  # the stored validation result, for build_data_docs


def load_suite(kind: str) -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{kind}.json").read_text(encoding="utf-8"))


def checked_columns(suite: dict) -> list[str]:
    """The columns whose values the suite's expectations read (table-level ones only read names)."""
    names = []
    for expectation in suite["expectations"]:
        kwargs = expectation["kwargs"]
        names += [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs] + kwargs.get("column_list", [])
    return list(dict.fromkeys(names))


_PRELOAD: threading.Thread | None = None


def preload() -> None:
    """Starts importing GX (3-5 s) in the background, so it overlaps the standardization that comes
    before the first checkpoint; run_suite waits for it."""
    global _PRELOAD
    if _PRELOAD is None and "great_expectations" not in sys.modules:
        _PRELOAD = threading.Thread(target=_quiet_gx, name="gx-import", daemon=True)
        _PRELOAD.start()


def _quiet_gx():
    if _PRELOAD is not None and _PRELOAD is not threading.current_thread():
        _PRELOAD.join()  # a failed background import is retried here, and raises here
    # GX logs ~200 INFO lines on import once Airflow has configured logging.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX fingerprints every pandas batch under this many bytes (an md5 over pandas' hash of every
    # value) as a batch marker, which no expectation reads; on a million rows it cost more than the
    # suite itself.
    pandas_execution_engine.HASH_THRESHOLD = 0
    return gx


@contextlib.contextmanager
def _gx_context(root: Path | None):
    """A file context under `root` (results and Data Docs persist) or an ephemeral one.

    GX keeps its datasource config in one YAML file; stage tasks of different sources run in
    parallel, so they take turns on a file lock.
    """
    gx = _quiet_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    if root is None:
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        yield context
        return
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        context = gx.get_context(mode="file", project_root_dir=str(root))
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        yield context


def _pandas_batch(frame: pl.DataFrame, suite: dict):
    """The frame as GX gets it: the checked columns (and the row id) through Arrow; every other column
    as an all-null Arrow array, which costs no memory but keeps the column names the table-level
    expectations check."""
    import pandas as pd
    import pyarrow as pa

    checked = [c for c in checked_columns(suite) if c in frame.columns]
    # GX compares numbers vectorized only for int64 and float64 columns; an int32 goes row by row.
    small_ints = [c for c in checked if frame.schema[c].is_integer() and frame.schema[c] != pl.Int64]
    batch = frame.select(ROW_ID, *checked).with_columns(pl.col(small_ints).cast(pl.Int64)).to_pandas()
    others = {c: pd.arrays.ArrowExtensionArray(pa.nulls(frame.height)) for c in frame.columns if c not in batch.columns}
    return pd.concat([batch, pd.DataFrame(others, index=batch.index)], axis=1)[frame.columns] if others else batch


def run_suite(kind: str, frame: pl.DataFrame, interval_end: datetime, gx_root: Path | None = None,
              run_name: str | None = None, *, data_docs: bool = True) -> ValidationReport:
    """Validates `frame` (which must carry a unique `_rid`) against expectations/<kind>.json through a
    checkpoint; with `gx_root`, its results also go to the file store and, with `data_docs`, to the
    Data Docs site (or later, for several results at once, with build_data_docs)."""
    _quiet_gx()  # first: no GX module may be imported here while preload() is still importing it
    from great_expectations.checkpoint import Checkpoint, UpdateDataDocsAction
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.core.validation_definition import ValidationDefinition

    spec = load_suite(kind)
    batch_frame = _pandas_batch(frame, spec)
    with _gx_context(gx_root) as context:
        suite = context.suites.add_or_update(ExpectationSuite(**spec))
        source = context.data_sources.add_or_update_pandas("crm_staging")
        asset = next((a for a in source.assets if a.name == kind), None) or source.add_dataframe_asset(kind)
        batch = next((b for b in asset.batch_definitions if b.name == "landed"), None) or (
            asset.add_batch_definition_whole_dataframe("landed")
        )
        definition = context.validation_definitions.add_or_update(ValidationDefinition(name=kind, data=batch, suite=suite))
        actions = [UpdateDataDocsAction(name="data_docs")] if gx_root and data_docs else []
        checkpoint = context.checkpoints.add_or_update(Checkpoint(
            name=kind, validation_definitions=[definition], actions=actions,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID],
                           "return_unexpected_index_query": False},
        ))
        outcome = checkpoint.run(
            batch_parameters={"dataframe": batch_frame},
            # Named after the data interval, never now(): a re-run overwrites its own results.
            run_id=RunIdentifier(run_name=run_name or kind, run_time=interval_end),
        )
    del batch_frame
    ((result_id, result),) = outcome.run_results.items()
    try:
        report = _report(kind, result.results, frame.height)
    except ContractError as exc:
        exc.result_id = result_id  # still stored: its Data Docs page shows what failed
        raise
    return replace(report, result_id=result_id)


def build_data_docs(gx_root: Path, kind: str, result_ids: list) -> None:
    """Renders the given validation results of one suite and the site index, once for all of them."""
    _quiet_gx()
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    with _gx_context(gx_root) as context:
        context.build_data_docs(resource_identifiers=[*result_ids, ExpectationSuiteIdentifier(name=kind)])


def _report(kind: str, results, height: int) -> ValidationReport:
    """Reads each result's own configuration: GX does not return results in suite order."""
    rows, failures, broken = [], [], []
    for res in results:
        config = res.expectation_config
        spec = {"type": config.type, "meta": config.meta or {}}
        kwargs = config.kwargs
        column = kwargs.get("column") or ",".join(kwargs.get("column_list", [])) or (
            f"{kwargs['column_A']},{kwargs['column_B']}" if "column_A" in kwargs else None
        )
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise ContractError(f"{kind}: {spec['type']}({column}) could not run: {res.exception_info.get('exception_message')}")
        unexpected = res.result.get("unexpected_count")
        rows.append({"expectation": spec["type"], "column_name": column, "is_success": bool(res.success),
                     "unexpected_count": unexpected, "element_count": res.result.get("element_count", height)})
        if res.success:
            continue
        index = res.result.get("unexpected_index_list")
        if index is None:
            broken.append(f"{spec['type']}({column}): {res.result.get('observed_value')}")
            continue
        reason = spec["meta"].get("reason_code") or _DEFAULT_REASONS.get(spec["type"], "expectation_failed")
        failures.append(RowFailure(spec["type"], column, reason, [int(i[ROW_ID]) for i in index]))
    if broken:
        raise ContractError(f"{kind}: table-level expectations failed: {'; '.join(broken)}")
    return ValidationReport(pl.DataFrame(rows, schema=RESULT_SCHEMA), failures)


def failures_frame(failures: list[RowFailure]) -> pl.DataFrame:
    """One row per failing row id: the first failure's reason code, and every failure as detail."""
    parts = [
        pl.DataFrame({ROW_ID: f.row_ids, "reason_code": f.reason_code, "reason_detail": f"{f.expectation}({f.column})",
                      "order": i}, schema={ROW_ID: pl.Int64, "reason_code": pl.String, "reason_detail": pl.String, "order": pl.Int32})
        for i, f in enumerate(failures)
    ]
    if not parts:
        return pl.DataFrame(schema={ROW_ID: pl.Int64, "reason_code": pl.String, "reason_detail": pl.String})
    return (
        pl.concat(parts)
        .sort(ROW_ID, "order")
        .group_by(ROW_ID, maintain_order=True)
        .agg(pl.col("reason_code").first(), pl.col("reason_detail").str.join("; "))
    )
