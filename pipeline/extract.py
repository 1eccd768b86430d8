"""Extract: raw day partitions -> Parquet landing zone, all values kept as text plus lineage."""
from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

import polars as pl

from pipeline.sources import SourceConfig

log = logging.getLogger(__name__)


class SourceMissingError(FileNotFoundError):
    """A configured source has no data at all where it should: a broken mount or a wrong path."""


def days_to_extract(partitions: list[date], watermark: date | None, run_date: date, owned: set[date] = frozenset()) -> list[date]:
    """Partitions after the watermark up to the run date, plus those this run date loaded before.

    A run owns the batches it loaded, so re-running a date redoes exactly the same work and
    reproduces the same tables; its own date is always (re)taken.
    """
    return [
        d for d in partitions
        if d in owned or d == run_date or (d <= run_date and (watermark is None or d > watermark))
    ]


def load_id_for(kind: str, day: date, path: Path) -> str:
    """Deterministic per content, so a re-run of the same file reproduces the same tables."""
    digest = hashlib.blake2b(f"{kind}:{day.isoformat()}:".encode(), digest_size=8)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def read_raw(source: SourceConfig, path: Path) -> pl.DataFrame:
    """Every column as text: typing happens in standardize, where a bad value can be quarantined."""
    if source.format == "csv":
        data = path.read_bytes().decode(source.encoding)
        return pl.read_csv(data.encode("utf-8"), infer_schema=False, separator=source.delimiter)
    if source.format == "jsonl":
        frame = pl.read_ndjson(path, infer_schema_length=None)
    else:
        frame = pl.read_parquet(path)
    return frame.select(pl.all().cast(pl.String))


def with_lineage(frame: pl.DataFrame, source_file: str, load_id: str, day: date) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(source_file).alias("_source_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row_number"),
        pl.lit(load_id).alias("_load_id"),
        pl.lit(day.isoformat()).alias("_batch_date"),
    )


def write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write beside the target, then rename: a crash never leaves a half-written Parquet file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    frame.write_parquet(tmp)
    tmp.replace(path)


def extract(
    source: SourceConfig, watermark: date | None, run_date: date, landing_dir: Path, owned: set[date] = frozenset()
) -> dict:
    """Lands the pending partitions of one source; returns paths and counts for XCom."""
    partitions = source.partitions()
    if not partitions:
        raise SourceMissingError(
            f"source {source.kind}: no files match {source.path_template.replace('{date}', '*')}"
        )
    days = days_to_extract(list(partitions), watermark, run_date, owned)
    if not days:
        log.info("source %s: no new data for %s (watermark %s)", source.kind, run_date, watermark)
        return {"kind": source.kind, "path": None, "rows": 0, "batches": []}
    frames, batches = [], []
    for day in days:
        path = partitions[day]
        load_id = load_id_for(source.kind, day, path)
        frame = with_lineage(read_raw(source, path), path.name, load_id, day)
        frames.append(frame)
        batches.append({"batch_date": day.isoformat(), "load_id": load_id, "source_file": path.name, "rows": frame.height})
    landed = pl.concat(frames, how="diagonal")
    out = landing_dir / source.kind / f"run_date={run_date.isoformat()}" / "part.parquet"
    write_atomic(landed, out)
    log.info("source %s: landed %d rows from %d partitions", source.kind, landed.height, len(days))
    return {"kind": source.kind, "path": str(out), "rows": landed.height, "batches": batches}
