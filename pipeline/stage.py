"""Standardize + validate one source's landed rows into accepted (staging) and quarantined rows.

Every landed row ends in exactly one of the two, per batch date, and the counts are checked.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from pipeline import standardize as std
from pipeline.extract import write_atomic
from pipeline.schemas import LINEAGE, SCHEMAS
from pipeline.validate import ROW_ID, failures_frame, run_suite

QUARANTINE_COLUMNS = ["source", "batch_date", "load_id", "source_file", "source_row_number", "reason_code", "reason_detail", "raw_record"]
PII_COLUMNS = {"email": std.mask_email, "phone": std.mask_phone}


class QuarantineThresholdError(RuntimeError):
    """Too large a share of a batch was rejected: the source itself is probably broken."""


@dataclass(frozen=True)
class StageContext:
    interval_end: datetime
    fx_rates: pl.DataFrame
    known_customers: pl.Series | None  # None for the customers source itself
    pii_salt: str


def standardize_kind(kind: str, typed: pl.DataFrame, ctx: StageContext) -> pl.DataFrame:
    """Per-kind standardization into warehouse-ready columns (lineage columns pass through)."""
    if kind == "customers":
        frame = std.normalize_text(typed, ["customer_id", "full_name", "city"])
        frame = frame.with_columns(pl.col("country").str.strip_chars().str.to_uppercase())
        frame = std.normalize_phone(std.normalize_email(frame))
        return frame.with_columns(
            std.salted_hash(frame["email"], ctx.pii_salt).alias("email_hash"),
            std.salted_hash(frame["phone"], ctx.pii_salt).alias("phone_hash"),
        )
    frame = std.normalize_text(typed, ["customer_id", "comment", "description"])
    frame = frame.with_columns(pl.col("customer_id").is_in(ctx.known_customers.implode()).alias("is_known_customer"))
    if kind == "orders":
        frame = std.normalize_text(frame, ["category", "channel"])
        frame = frame.with_columns(pl.col("status").str.strip_chars().str.to_lowercase(), pl.col("currency").str.to_uppercase())
        frame = std.convert_currency(frame, ctx.fx_rates, ["unit_price", "unit_cost"])
        return frame.rename({"unit_price": "unit_price_amount", "unit_cost": "unit_cost_amount"}).with_columns(
            (pl.col("quantity") * pl.col("unit_price_base")).alias("line_amount"),
            (pl.col("quantity") * pl.col("unit_cost_base")).alias("line_cost_amount"),
            pl.col("currency").is_in(ctx.fx_rates["currency"].implode()).alias("has_fx_rate"),
            (pl.col("status") == "cancelled").alias("is_cancelled"),
            (pl.col("status") == "returned").alias("is_returned"),
        ).drop("unit_price_base", "unit_cost_base")
    if kind == "complaints":
        return frame.with_columns(pl.col("severity").str.strip_chars().str.to_lowercase(), pl.col("category").str.strip_chars())
    return frame


def raw_records(raw: pl.DataFrame) -> pl.DataFrame:
    """The original row as JSON text, PII masked, keyed by row id."""
    data = [c for c in raw.columns if not c.startswith("_")]
    masked = raw.with_columns(fn(raw[c]).alias(c) for c, fn in PII_COLUMNS.items() if c in data)
    return masked.select(ROW_ID, pl.struct(data).struct.json_encode().alias("raw_record"))


def stage(kind: str, landed: pl.DataFrame, ctx: StageContext) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Returns (accepted rows, quarantine rows, GX results); raises if any row went missing."""
    schema = SCHEMAS[kind]
    raw = landed.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID))
    data_columns = [c for c in raw.columns if not c.startswith("_")]
    unique, exact_dups = std.split_exact_duplicates(raw, data_columns)
    typed, unparsable = std.cast_to_schema(unique, schema)
    frame = standardize_kind(kind, typed, ctx)
    frame, superseded = std.split_superseded(frame, list(schema.business_key))
    report = run_suite(kind, frame, ctx.interval_end)
    failed = failures_frame(report.failures)
    rejected = pl.concat([
        unparsable.select(ROW_ID, pl.lit("parse_error").alias("reason_code"), "reason_detail"),
        _tagged(exact_dups, "exact_duplicate", "identical to an earlier row"),
        _tagged(superseded, "superseded_version", f"a later row has the same {'+'.join(schema.business_key)}"),
        failed,
    ])
    accepted = frame.join(failed, on=ROW_ID, how="anti")
    quarantine = _quarantine_rows(kind, raw, rejected)
    reconcile(raw, accepted, quarantine)
    keep = [*schema_output_columns(kind, frame), *LINEAGE]
    return _warehouse_lineage(accepted.select(keep)), quarantine, report.results


def _tagged(rows: pl.DataFrame, code: str, detail: str) -> pl.DataFrame:
    return rows.select(ROW_ID, pl.lit(code).alias("reason_code"), pl.lit(detail).alias("reason_detail"))


def schema_output_columns(kind: str, frame: pl.DataFrame) -> list[str]:
    """Standardized columns, without the lineage and the helper flags used only by the suite."""
    helpers = {ROW_ID, "is_known_customer", "has_fx_rate", *LINEAGE}
    return [c for c in frame.columns if c not in helpers]


def _warehouse_lineage(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename(
        {"_batch_date": "batch_date", "_load_id": "load_id", "_source_file": "source_file", "_row_number": "source_row_number"}
    ).with_columns(pl.col("batch_date").str.to_date())


def _quarantine_rows(kind: str, raw: pl.DataFrame, rejected: pl.DataFrame) -> pl.DataFrame:
    joined = rejected.join(raw_records(raw), on=ROW_ID).join(raw.select(ROW_ID, *LINEAGE), on=ROW_ID)
    return _warehouse_lineage(joined).with_columns(pl.lit(kind).alias("source")).sort("batch_date", "source_row_number").select(
        ROW_ID, *QUARANTINE_COLUMNS
    )


def reconcile(raw: pl.DataFrame, accepted: pl.DataFrame, quarantine: pl.DataFrame) -> None:
    """Raw rows = accepted + quarantined, and no row is in both."""
    both = accepted.join(quarantine, on=ROW_ID, how="semi").height
    if both or raw.height != accepted.height + quarantine.height:
        raise AssertionError(
            f"reconciliation failed: raw {raw.height} != accepted {accepted.height} + quarantined {quarantine.height} "
            f"({both} rows in both)"
        )


def batch_counts(kind: str, landed_batches: list[dict], accepted: pl.DataFrame, quarantine: pl.DataFrame) -> pl.DataFrame:
    """One reconciliation row per batch date."""
    acc = Counter(d.isoformat() for d in accepted["batch_date"].to_list())
    qua = Counter(d.isoformat() for d in quarantine["batch_date"].to_list())
    rows = [
        {"source": kind, "batch_date": b["batch_date"], "load_id": b["load_id"], "source_file": b["source_file"],
         "raw_rows": b["rows"], "accepted_rows": acc[b["batch_date"]], "quarantined_rows": qua[b["batch_date"]]}
        for b in landed_batches
    ]
    bad = [r for r in rows if r["raw_rows"] != r["accepted_rows"] + r["quarantined_rows"]]
    if bad:
        raise AssertionError(f"{kind}: batches do not reconcile: {bad}")
    return pl.DataFrame(rows).with_columns(pl.col("batch_date").str.to_date())


def check_quarantine_share(kind: str, raw_rows: int, quarantine: pl.DataFrame, max_share: float) -> None:
    if raw_rows == 0 or quarantine.height / raw_rows <= max_share:
        return
    top = quarantine["reason_code"].value_counts(sort=True).head(3).rows()
    reasons = ", ".join(f"{code} ({n})" for code, n in top)
    raise QuarantineThresholdError(
        f"source {kind}: {quarantine.height} of {raw_rows} rows quarantined "
        f"({quarantine.height / raw_rows:.1%} > allowed {max_share:.1%}); top reasons: {reasons}"
    )


def write_partitions(frame: pl.DataFrame, root: Path, dates: list[str], key: str = "batch_date") -> list[str]:
    """One Parquet file per date, written even when empty so a reprocessed date replaces stale rows."""
    paths = []
    for day in dates:
        path = root / f"{key}={day}" / "part.parquet"
        write_atomic(frame.filter(pl.col(key) == pl.lit(day).str.to_date()), path)
        paths.append(str(path))
    return paths
