"""The CRM segment export: one as-of date's customer segments as files a sync tool picks up.

    $CRM_HOME/exports/<as_of_date>/segments.csv       UTF-8, header, comma-separated, ISO dates
    $CRM_HOME/exports/<as_of_date>/segments.parquet   the same rows and types
    $CRM_HOME/exports/<as_of_date>/manifest.json      rows and SHA-256 of both files, written last

One row per customer scored that day (customer_score_daily), sorted by customer_id: the key, the
pyramid tier, the RFM segment, the churn risk band and the CLV. No contact data: a sync tool joins
on customer_id in the CRM, which already holds the contacts. Every file is written beside its
target and renamed into place, so a reader sees the previous file or the new one, never a part;
re-exporting a date from the same warehouse rewrites identical bytes.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from pipeline.warehouse import sql_text

EXPORT_SCHEMA = {
    "customer_id": pl.String, "as_of_date": pl.Date, "pyramid_tier": pl.String, "rfm_segment": pl.String,
    "churn_risk_band": pl.String, "clv_amount": pl.Float64,
}
FILES = ("segments.csv", "segments.parquet")
MANIFEST = "manifest.json"


def segment_rows(conn: sa.Connection, as_of: date) -> pl.DataFrame:
    """The export rows of the as-of date, in customer_id byte order (the same on every database)."""
    result = conn.execute(sa.text(sql_text("queries/export_segments")), {"as_of": as_of})
    frame = pl.DataFrame([tuple(r) for r in result], schema=EXPORT_SCHEMA, orient="row")
    # Cents: a CRM field holds money, not the model's floating-point tail.
    return frame.with_columns(pl.col("clv_amount").fill_nan(None).round(2)).sort("customer_id")


def write_export(frame: pl.DataFrame, as_of: date, out_dir: Path) -> dict:
    """Writes the CSV, the Parquet file and then the manifest; returns the manifest."""
    if list(frame.schema.items()) != list(EXPORT_SCHEMA.items()):
        raise ValueError(f"export frame has columns {dict(frame.schema)}, expected {EXPORT_SCHEMA}")
    if frame.filter(pl.col("as_of_date") != as_of).height:
        raise ValueError(f"export rows for {as_of} hold other as-of dates")
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {"segments.csv": lambda path: frame.write_csv(path, date_format="%Y-%m-%d"),
               "segments.parquet": frame.write_parquet}
    digests = {name: _write_atomic(out_dir / name, writers[name]) for name in FILES}
    manifest = {"as_of_date": as_of.isoformat(), "rows": frame.height, "columns": list(EXPORT_SCHEMA),
                "sha256": digests}
    _write_atomic(out_dir / MANIFEST, lambda path: Path(path).write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


def _write_atomic(path: Path, write) -> str:
    """write(tmp) beside `path`, fsync, rename over it; the SHA-256 of what was written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return digest
