"""Great Expectations contracts, run on the standardized frame handed over as pandas via Arrow.

GX 1.x has no Polars support and its DuckDB SQL path silently returns nothing, so every
warehouse validates the same way: in memory, with COMPLETE results for row-level quarantine.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from pipeline.settings import PROJECT_ROOT

EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
ROW_ID = "_rid"
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


def load_suite(kind: str) -> dict:
    return json.loads((EXPECTATIONS_DIR / f"{kind}.json").read_text(encoding="utf-8"))


def _quiet_gx():
    # GX logs ~200 INFO lines on import once Airflow has configured logging.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_suite(kind: str, frame: pl.DataFrame, interval_end: datetime) -> ValidationReport:
    """Validates `frame` (which must carry a unique `_rid`) against expectations/<kind>.json."""
    import pandas as pd
    from great_expectations.core.expectation_suite import ExpectationSuite

    suite_doc = load_suite(kind)
    context = _quiet_gx()
    suite = context.suites.add(ExpectationSuite(**suite_doc))
    batch = (
        context.data_sources.add_pandas(f"{kind}_source")
        .add_dataframe_asset(kind)
        .add_batch_definition_whole_dataframe("run")
        .get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    )
    outcome = batch.validate(
        suite,
        expectation_parameters={"interval_end": pd.Timestamp(interval_end)},
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": [ROW_ID],
            "return_unexpected_index_query": False,
        },
    )
    return _report(kind, outcome.results, frame.height)


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
    schema = {"expectation": pl.String, "column_name": pl.String, "is_success": pl.Boolean,
              "unexpected_count": pl.Int64, "element_count": pl.Int64}
    return ValidationReport(pl.DataFrame(rows, schema=schema), failures)


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
