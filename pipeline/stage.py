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
from pipeline.mapping import ITEM_PREFIX, apply_mapping, data_columns, likert_items
from pipeline.schemas import LIKERT_MEASURES, LINEAGE, RAW_FIELDS, READ_ERROR, SCHEMAS, common_scale
from pipeline.sources import SourceConfig, item_range
from pipeline.validate import ROW_ID, failures_frame, run_suite

QUARANTINE_COLUMNS = ["source", "batch_date", "load_id", "source_file", "source_row_number", "reason_code", "reason_detail", "raw_record"]
_MASKS = {"email": std.mask_email, "customer_email": std.mask_email, "phone": std.mask_phone, "customer_phone": std.mask_phone,
          "full_name": std.mask_name}
# Flags computed in Polars for the suite to check; they are not warehouse columns.
HELPER_FLAGS = {"is_known_customer", "has_customer_ref", "has_fx_rate", "is_quantity_sign_consistent",
                "are_likert_answers_in_range"}


class QuarantineThresholdError(RuntimeError):
    """Too large a share of a batch was rejected: the source itself is probably broken."""


@dataclass(frozen=True)
class StageContext:
    source: SourceConfig
    interval_end: datetime
    fx_rates: pl.DataFrame  # currency, rate_to_base
    known_customers: pl.Series | None  # None: every customer id counts as known (no master, or the master itself)
    registry: pl.DataFrame | None  # customer_id, email_hash, phone_hash of the customer master
    pii_salt: str


@dataclass(frozen=True)
class Staged:
    accepted: pl.DataFrame
    quarantine: pl.DataFrame
    results: pl.DataFrame  # one row per expectation
    answers: pl.DataFrame | None = None  # surveys: one row per response per item


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
    frame = std.normalize_text(typed, ["customer_id", "order_id", "comment", "description", "category", "channel"])
    registry = ctx.registry if ctx.registry is not None else pl.DataFrame(
        schema={"customer_id": pl.String, "email_hash": pl.String, "phone_hash": pl.String}
    )
    frame = std.resolve_customer(frame, registry, ctx.pii_salt)
    known = pl.lit(True) if ctx.known_customers is None else pl.col("customer_id").is_in(ctx.known_customers.implode())
    frame = frame.with_columns(
        (pl.col("customer_id").is_null() | known).alias("is_known_customer"),
        (pl.col("customer_id").is_not_null() | pl.lit(ctx.source.missing_customer == "keep")).alias("has_customer_ref"),
    )
    if kind == "orders":
        return _standardize_orders(frame, ctx.fx_rates)
    if kind == "complaints":
        return frame.with_columns(
            pl.col("severity").str.strip_chars().str.to_lowercase(), pl.col("status").str.strip_chars().str.to_lowercase()
        )
    items = likert_items(frame, ctx.source)
    return std.likert_measures(frame, items, *_likert_scales(items, ctx.source))


def _standardize_orders(frame: pl.DataFrame, fx_rates: pl.DataFrame) -> pl.DataFrame:
    frame = frame.with_columns(pl.col("currency").str.strip_chars().str.to_uppercase())
    frame = std.convert_currency(frame, fx_rates, ["unit_price", "unit_cost"])
    is_reversal = pl.col("status").is_in(["cancelled", "returned"])
    return frame.rename({"unit_price": "unit_price_amount", "unit_cost": "unit_cost_amount"}).with_columns(
        (pl.col("quantity") * pl.col("unit_price_base")).alias("line_amount"),
        (pl.col("quantity") * pl.col("unit_cost_base")).alias("line_cost_amount"),
        pl.col("currency").is_in(fx_rates["currency"].implode()).alias("has_fx_rate"),
        (pl.col("status") == "cancelled").alias("is_cancelled"),
        (pl.col("status") == "returned").alias("is_returned"),
        ((pl.col("quantity") > 0) | is_reversal).alias("is_quantity_sign_consistent"),
    ).drop("unit_price_base", "unit_cost_base")


def raw_records(raw: pl.DataFrame) -> pl.DataFrame:
    """The original row as JSON text (PII masked), keyed by row id; rows the reader could not split
    keep their original fields."""
    data = data_columns(raw)
    masked = raw.with_columns(_MASKS[c](raw[c]).alias(c) for c in data if c in _MASKS)
    record = pl.struct(data).struct.json_encode() if data else pl.lit("{}")
    if RAW_FIELDS in raw.columns:
        # Unsplit fields have no column names to mask by: mask what looks like an email or phone.
        masked = masked.with_columns(std.mask_text(raw[RAW_FIELDS]).alias(RAW_FIELDS))
        record = pl.coalesce(pl.col(RAW_FIELDS), record)
    return masked.select(ROW_ID, record.alias("raw_record"))


def stage(kind: str, landed: pl.DataFrame, ctx: StageContext, *, gx_root: Path | None = None,
          run_name: str | None = None) -> Staged:
    """Returns accepted rows, quarantine rows and GX results; raises if any row went missing."""
    schema, source = SCHEMAS[kind], ctx.source
    raw = landed.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_ID))
    readable = raw.filter(pl.col(READ_ERROR).is_null()) if READ_ERROR in raw.columns else raw
    unique, exact_dups = std.split_exact_duplicates(readable, data_columns(readable))
    mapped = apply_mapping(unique, source)
    items = likert_items(mapped, source)
    types = {**schema.columns, **{i: pl.Float64 for v in items.values() for i in v}}
    typed, unparsable = std.cast_to_schema(mapped, types, source.datetime_formats, source.timezone)
    frame = standardize_kind(kind, typed, ctx)
    frame, superseded = std.split_superseded(frame, list(schema.business_key))
    report = run_suite(kind, frame, ctx.interval_end, gx_root, run_name)
    failed = failures_frame(report.failures)
    rejected = pl.concat([
        _unreadable(raw),
        unparsable.select(ROW_ID, pl.lit("parse_error").alias("reason_code"), "reason_detail"),
        _tagged(exact_dups, "exact_duplicate", "identical to an earlier row"),
        _tagged(superseded, "superseded_version", f"a later row has the same {'+'.join(schema.business_key)}"),
        failed,
    ])
    accepted = frame.join(failed, on=ROW_ID, how="anti")
    quarantine = _quarantine_rows(kind, raw, rejected)
    reconcile(raw, accepted, quarantine)
    answers = _answers(accepted, items, source) if items else None
    if kind == "surveys":  # every measure column exists, null when this survey does not ask it
        accepted = accepted.with_columns(pl.lit(None, pl.Float64).alias(f"{m}_score") for m in LIKERT_MEASURES
                                         if f"{m}_score" not in accepted.columns)
    keep = [*schema_output_columns(accepted), *LINEAGE]
    return Staged(_warehouse_lineage(accepted.select(keep)), quarantine, report.results,
                  _warehouse_lineage(answers) if answers is not None else None)


def _unreadable(raw: pl.DataFrame) -> pl.DataFrame:
    if READ_ERROR not in raw.columns:
        return pl.DataFrame(schema={ROW_ID: pl.Int64, "reason_code": pl.String, "reason_detail": pl.String})
    return raw.filter(pl.col(READ_ERROR).is_not_null()).select(
        ROW_ID,  # the reader writes "<reason_code>: <detail>"
        pl.col(READ_ERROR).str.split_exact(": ", 1).struct.field("field_0").alias("reason_code"),
        pl.col(READ_ERROR).str.split_exact(": ", 1).struct.field("field_1").alias("reason_detail"),
    )


def _likert_scales(items: dict[str, list[str]], source: SourceConfig) -> tuple[dict, dict]:
    """(answer range per item column, common scale per measure) for rescaling."""
    ranges = {i: item_range(source.likert, i.removeprefix(ITEM_PREFIX)) for v in items.values() for i in v}
    return ranges, {m: common_scale(m) for m in items}


def _answers(accepted: pl.DataFrame, items: dict[str, list[str]], source: SourceConfig) -> pl.DataFrame:
    answers = std.likert_answers(accepted, items, *_likert_scales(items, source),
                                 ["response_id", "customer_id", "responded_at", *LINEAGE])
    return answers.with_columns(pl.col("item").str.strip_prefix(ITEM_PREFIX))


def _tagged(rows: pl.DataFrame, code: str, detail: str) -> pl.DataFrame:
    return rows.select(ROW_ID, pl.lit(code).alias("reason_code"), pl.lit(detail).alias("reason_detail"))


def schema_output_columns(frame: pl.DataFrame) -> list[str]:
    """Standardized columns, without lineage, Likert items and the helper flags used only by the suite."""
    helpers = {ROW_ID, *HELPER_FLAGS, *LINEAGE}
    return [c for c in frame.columns if c not in helpers and not c.startswith(ITEM_PREFIX)]


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


def batch_counts(kind: str, landed_batches: list[dict], accepted: pl.DataFrame | None,
                 quarantine: pl.DataFrame | None) -> pl.DataFrame:
    """One reconciliation row per batch date; fails if any batch does not add up."""
    acc = Counter(d.isoformat() for d in accepted["batch_date"].to_list()) if accepted is not None else Counter()
    qua = Counter(d.isoformat() for d in quarantine["batch_date"].to_list()) if quarantine is not None else Counter()
    rows = [
        {"source": kind, "batch_date": b["batch_date"], "load_id": b["load_id"], "source_file": b["source_file"],
         "raw_rows": b["rows"], "accepted_rows": acc[b["batch_date"]], "quarantined_rows": qua[b["batch_date"]]}
        for b in landed_batches
    ]
    bad = [r for r in rows if r["raw_rows"] != r["accepted_rows"] + r["quarantined_rows"]]
    if bad:
        raise AssertionError(f"{kind}: batches do not reconcile: {bad}")
    return pl.DataFrame(rows).with_columns(pl.col("batch_date").str.to_date())


def check_quarantine_share(kind: str, raw_rows: int, quarantine: pl.DataFrame | None, max_share: float) -> None:
    if quarantine is None or raw_rows == 0 or quarantine.height / raw_rows <= max_share:
        return
    top = quarantine["reason_code"].value_counts(sort=True).head(3).rows()
    reasons = ", ".join(f"{code} ({n})" for code, n in top)
    raise QuarantineThresholdError(
        f"source {kind}: {quarantine.height} of {raw_rows} rows quarantined "
        f"({quarantine.height / raw_rows:.1%} > allowed {max_share:.1%}); top reasons: {reasons}"
    )


def write_partitions(frame: pl.DataFrame | None, root: Path, dates: list[str], key: str = "batch_date") -> list[str]:
    """One Parquet file per date, so a reprocessed date replaces stale rows; a date without rows has no
    file (an old one is removed)."""
    paths = []
    for day in dates:
        path = root / f"{key}={day}" / "part.parquet"
        part = frame.filter(pl.col(key) == pl.lit(day).str.to_date()) if frame is not None else None
        if part is None or part.is_empty():
            path.unlink(missing_ok=True)
            continue
        write_atomic(part, path)
        paths.append(str(path))
    return paths
