"""Extract: raw exports (files or a database) -> Parquet landing zone, every value kept as text plus lineage.

A source is either one file per day (`{date}` in its path), one export holding many days, or a
database table/query; the last two are cut into day batches by their event timestamp.
"""
from __future__ import annotations

import contextlib
import csv
import gzip
import hashlib
import io
import json
import logging
import os
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import polars as pl

from pipeline.mapping import canonical_column, check_columns, data_columns
from pipeline.schemas import RAW_FIELDS, READ_ERROR, SCHEMAS
from pipeline.sources import DatabaseLocation, SourceConfig
from pipeline.standardize import parse_timestamp

log = logging.getLogger(__name__)
BATCH = "_batch_date"
csv.field_size_limit(1 << 30)  # long free-text fields are the suite's business, not the reader's


class SourceMissingError(FileNotFoundError):
    """A configured source has no data at all where it should: a broken mount or a wrong path."""


class SourceReadError(ValueError):
    """A file cannot be read as configured (encoding, format); the message says which and how to fix it."""


class SourceIncompleteError(RuntimeError):
    """A file ends inside a record: it is still being written, or was cut short. Not bad input but
    a file read too early, so the task is not failed at once: its retries wait for the rest."""


def days_to_extract(partitions: list[date], watermark: date | None, run_date: date, owned: set[date] = frozenset()) -> list[date]:
    """Partitions after the watermark up to the run date, plus those this run date loaded before.

    A run owns the batches it loaded, so re-running a date redoes exactly the same work and
    reproduces the same tables; its own date is always (re)taken.
    """
    return [
        d for d in partitions
        if d in owned or d == run_date or (d <= run_date and (watermark is None or d > watermark))
    ]


def content_digest(kind: str, day: date | None, data: bytes) -> str:
    """Deterministic per content, so a re-run of the same file reproduces the same tables."""
    prefix = f"{kind}:{day.isoformat() if day else ''}:".encode()
    return hashlib.blake2b(prefix + data, digest_size=8).hexdigest()


def decode(data: bytes, encoding: str, name: str) -> str:
    """Text of a file; `auto` takes a BOM, then strict UTF-8, then GB18030 (a superset of GBK/GB2312)."""
    if encoding == "auto":
        if data.startswith(b"\xef\xbb\xbf"):
            return data[3:].decode("utf-8")
        for candidate in ("utf-8", "gb18030"):
            try:
                return data.decode(candidate)
            except UnicodeDecodeError:
                continue
        raise SourceReadError(f"{name}: neither UTF-8 nor GB18030 text; set `encoding` for this source")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        hint = "gb18030" if encoding.startswith("utf") else "utf-8"
        raise SourceReadError(
            f"{name}: not valid {encoding} (byte {exc.start}: {data[exc.start:exc.start + 4]!r}); "
            f"the file may be {hint}: set `encoding: {hint}` or `auto`"
        ) from exc
    return text.removeprefix("\ufeff")  # a BOM left by Excel is not part of the first column's name


def parse_csv(text: str, delimiter: str) -> pl.DataFrame:
    """All fields as text, empty fields null. Rows with the wrong number of fields are kept, flagged,
    for the quarantine."""
    header = _header(text, delimiter)
    if header is None:
        return pl.DataFrame()
    _check_header(header)
    frame = _parse_csv_fast(text, header, delimiter)
    if frame is None:
        frame = _parse_csv_exact(text, header, delimiter)
        frame = frame.with_columns(pl.when(pl.col(h) != "").then(pl.col(h)).alias(h) for h in header)
    return frame


def _header(text: str, delimiter: str) -> list[str] | None:
    """The first record. Read from the first line alone when it has no quote (no field in it can
    span lines), which spares copying the whole file into the reader."""
    end = text.find("\n")
    first = text if end < 0 else text[:end + 1]
    return next(csv.reader(io.StringIO(text if '"' in first else first, newline=""), delimiter=delimiter), None)


def _parse_csv_fast(text: str, header: list[str], delimiter: str) -> pl.DataFrame | None:
    """Arrow's multi-threaded reader, ~20x faster than the csv module; None when any row is ragged,
    since Arrow can only skip such rows, not keep them in place."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    ragged = []

    def on_invalid(row) -> str:
        ragged.append(row)
        return "skip"

    try:
        table = pacsv.read_csv(
            io.BytesIO(text.encode("utf-8")),
            read_options=pacsv.ReadOptions(column_names=header, skip_rows=1, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid),
            # Empty fields, quoted or not, are null, as the exact reader makes them.
            convert_options=pacsv.ConvertOptions(column_types={h: pa.string() for h in header}, null_values=[""],
                                                 strings_can_be_null=True, quoted_strings_can_be_null=True),
        )
    except pa.ArrowInvalid:  # e.g. a header that spans lines: let the exact reader decide
        return None
    if ragged:
        return None
    frame = pl.from_arrow(table)
    return frame.with_columns(pl.lit(None, pl.String).alias(READ_ERROR), pl.lit(None, pl.String).alias(RAW_FIELDS))


def _parse_csv_exact(text: str, header: list[str], delimiter: str) -> pl.DataFrame:
    """Python's csv module, row by row: slow, but it keeps ragged rows where they are."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    next(reader)
    width = len(header)
    rows, errors, raw = [], [], []
    for fields in reader:
        if not fields:  # a blank line is not a record
            continue
        if len(fields) == width:
            rows.append(fields), errors.append(None), raw.append(None)
        else:
            rows.append([None] * width)
            errors.append(f"ragged_row: {len(fields)} fields where the header has {width}")
            raw.append(json.dumps(fields, ensure_ascii=False))
    columns = list(zip(*rows)) if rows else [()] * width
    frame = pl.DataFrame({h: pl.Series(h, c, dtype=pl.String) for h, c in zip(header, columns)})
    return frame.with_columns(pl.Series(READ_ERROR, errors, dtype=pl.String), pl.Series(RAW_FIELDS, raw, dtype=pl.String))


def parse_jsonl(text: str) -> pl.DataFrame:
    """One record per line, values as text; a line that is not a JSON object is kept, flagged."""
    try:
        frame = _as_text(pl.read_ndjson(io.BytesIO(text.encode("utf-8")), infer_schema_length=None))
    except Exception:  # Polars rejects the whole file for one bad line; find it line by line
        return _parse_jsonl_exact(text)
    return frame.with_columns(pl.lit(None, pl.String).alias(READ_ERROR), pl.lit(None, pl.String).alias(RAW_FIELDS))


def _parse_jsonl_exact(text: str) -> pl.DataFrame:
    records, errors, raw = [], [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problem = None if isinstance(record, dict) else "malformed_json: the line is JSON but not an object"
        except json.JSONDecodeError as exc:
            record, problem = None, f"malformed_json: {exc.msg} at column {exc.colno}"
        if problem:
            records.append({}), errors.append(problem), raw.append(json.dumps([line], ensure_ascii=False))
        else:
            records.append({k: v if isinstance(v, str) or v is None else json.dumps(v, ensure_ascii=False)
                            for k, v in record.items()})
            errors.append(None), raw.append(None)
    columns = list(dict.fromkeys(k for r in records for k in r))
    frame = pl.DataFrame({c: pl.Series(c, [r.get(c) for r in records], dtype=pl.String) for c in columns})
    return frame.with_columns(pl.Series(READ_ERROR, errors, dtype=pl.String), pl.Series(RAW_FIELDS, raw, dtype=pl.String))


def _check_header(header: list[str]) -> None:
    seen = [h for h in header if header.count(h) > 1]
    if seen or any(h.strip() == "" for h in header):
        raise SourceReadError(f"the header has duplicate or empty column names: {sorted(set(seen)) or header}")


def read_file(source: SourceConfig, path: Path) -> tuple[pl.DataFrame, bytes]:
    """(every column as text, the file's bytes for the load id). Typing happens in standardize,
    where a bad value can be quarantined."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except EOFError as exc:
            raise SourceIncompleteError(f"{path.name}: the gzip stream ends early ({exc}); the file is still "
                                        "being written or was cut short") from exc
    if not data.strip():
        return pl.DataFrame(), data
    try:
        if source.format in ("csv", "jsonl"):
            text = decode(data, source.encoding, path.name)
            frame = parse_csv(text, source.delimiter) if source.format == "csv" else parse_jsonl(text)
            check_last_line(text, frame, path.name)
            return frame, data
        if source.format == "parquet":
            frame = pl.read_parquet(io.BytesIO(data))
        else:
            frame = pl.read_excel(io.BytesIO(data), sheet_name=source.sheet, infer_schema_length=0)
    except (SourceReadError, SourceIncompleteError):
        raise
    except Exception as exc:  # each reader raises its own error types; name the file and the format
        raise SourceReadError(f"{path.name}: cannot be read as {source.format}: {exc}") from exc
    return _as_text(frame), data


def check_last_line(text: str, frame: pl.DataFrame, name: str) -> None:
    """A last line without a line end that the reader had to flag (a field count unlike the
    header's, a quote left open, half a JSON object) is a record cut off by a writer still at work. Landing it would
    quarantine that half record and lose the rest of the file for this batch without a trace, so
    the file is refused instead. A complete last record without a line end is fine."""
    if text.endswith(("\n", "\r")) or frame.is_empty() or READ_ERROR not in frame.columns:
        return
    problem = frame[READ_ERROR][-1]
    if problem is not None:
        raise SourceIncompleteError(
            f"{name}: the last line has no line end and is not a complete record ({problem}): the file is "
            "still being written or was cut short; the task retries, and a file that stays cut must be re-exported")


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested JSON values keep their JSON text; everything else its plain text."""
    return frame.select(
        pl.col(c).struct.json_encode() if isinstance(t, pl.Struct)
        else pl.col(c).cast(pl.String) if not isinstance(t, pl.List)
        else pl.col(c).map_elements(lambda v: json.dumps(v.to_list()), return_dtype=pl.String)
        for c, t in frame.schema.items()
    )


def read_database(db: DatabaseLocation, since: datetime | None, until: datetime) -> pl.DataFrame:
    """Rows with since <= incremental column < until, through SQLAlchemy with bound parameters."""
    import sqlalchemy as sa

    column = sa.column(db.incremental_column)
    if db.table:
        schema, _, name = db.table.rpartition(".")
        source = sa.table(name, schema=schema or None)
    else:
        # A trailing "-- comment" in the file must not swallow the subquery's closing parenthesis.
        source = sa.text(db.query + "\n").columns().subquery("src")
    query = sa.select(sa.text("*")).select_from(source).where(column < until)
    if since is not None:
        query = query.where(column >= since)
    engine = sa.create_engine(db.url)
    try:
        with engine.connect() as conn:
            frame = pl.read_database(query.order_by(column), conn, infer_schema_length=None)
    except sa.exc.SQLAlchemyError as exc:
        raise SourceReadError(f"database source {db.label}: {exc.__class__.__name__}: {exc.orig or exc}") from exc
    finally:
        engine.dispose()
    return _as_text(frame)


def with_lineage(frame: pl.DataFrame, source_file: str, load_id: str | pl.Expr, row_offset: int = 0) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(source_file).alias("_source_file"),
        pl.int_range(row_offset + 1, row_offset + pl.len() + 1, dtype=pl.Int64).alias("_row_number"),
        (load_id if isinstance(load_id, pl.Expr) else pl.lit(load_id)).alias("_load_id"),
    )


def event_dates(frame: pl.DataFrame, source: SourceConfig) -> pl.Series:
    """The UTC date of each row's event; a row whose timestamp cannot be read takes the date of the
    row before it in the export (or after it, at the start), so it lands in exactly one batch and is
    quarantined there."""
    event = canonical_column(SCHEMAS[source.kind].event_at, source, data_columns(frame))
    # with_columns, not select: a constant event date must broadcast to every row
    parsed = frame.with_columns(parse_timestamp(event, source.datetime_formats, source.timezone).dt.date().alias(BATCH))[BATCH]
    filled = parsed.fill_null(strategy="forward").fill_null(strategy="backward")
    if filled.null_count():
        raise SourceReadError(f"{source.kind}: no row has a readable {source.event_column!r}; check `datetime_formats`")
    return filled


class LakeWriteError(OSError):
    """A lake file could not be written (the disk is full or read-only, say); the message names it."""


@contextlib.contextmanager
def writing(path: Path, *temporary: Path):
    """Any failure inside names the file being written and removes the temporary files."""
    try:
        yield
    except Exception as exc:
        for tmp in temporary:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise LakeWriteError(f"cannot write {path}: {exc}") from exc


def temporary_path(path: Path, suffix: str = "") -> Path:
    """A hidden name beside path, of this process only: two writers never share one."""
    return path.with_name(f".{path.name}{suffix}.{os.getpid()}.tmp")


def write_atomic(frame: pl.DataFrame, path: Path) -> None:
    """Write beside the target, then rename: a crash never leaves a half-written Parquet file, and a
    failed write (disk full, read-only) no temporary one."""
    tmp = temporary_path(path)
    with writing(path, tmp):
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(tmp)
        tmp.replace(path)


ROW_GROUP_ROWS = 200_000  # landed rows per row group: a few days, or one large one


class _LandingWriter:
    """Streams day frames into one Parquet file, row group by row group, holding about one at a time.

    The file is what `pl.concat(days, how="diagonal")` without the empty-batch placeholders would be:
    columns in order of first appearance, null where a day lacks a column. Days with the same columns
    go straight into one part; a change of columns starts a new part, and the parts are then
    concatenated, streaming. Nothing is visible at `path` until `commit`.
    """

    def __init__(self, path: Path):
        self.path, self.parts, self.columns = path, [], {}  # columns: name -> dtype, first appearance first
        self.batches: dict[tuple[str, str, str], int] = {}
        self.rows, self.pieces, self._writer, self._layout = 0, 0, None, None
        self._buffer, self._buffered = [], 0

    def add(self, frame: pl.DataFrame) -> None:
        self.pieces += frame.height > 0
        for name, dtype in frame.schema.items():
            self.columns.setdefault(name, dtype)
        counts = frame.group_by(BATCH, "_load_id", "_source_file", maintain_order=True).agg(
            pl.col("_row_number").is_not_null().sum().alias("rows"))
        for day, load_id, source_file, rows in counts.iter_rows():
            key = (day, load_id, source_file)
            self.batches[key] = self.batches.get(key, 0) + rows
        data = frame.filter(pl.col("_row_number").is_not_null())
        if data.is_empty():
            return
        table = data.to_arrow()
        if self._layout != table.schema:
            self._close_part()
            import pyarrow.parquet as pq

            part = temporary_path(self.path, f"-{len(self.parts)}")
            self.parts.append(part)
            with writing(self.path):
                part.parent.mkdir(parents=True, exist_ok=True)
                # Statistics only where a reader prunes by them (a chunk of batch days): on every text
                # column they were a fifth of writing the landing file.
                self._writer = pq.ParquetWriter(part, table.schema, compression="zstd", write_statistics=[BATCH, "_row_number"])
                self._layout = table.schema
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += data.height
        if self._buffered >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Days go out together as one row group: a row group per small day costs more than the day."""
        if self._buffer:
            import pyarrow as pa

            with writing(self.path):
                self._writer.write_table(pa.concat_tables(self._buffer), row_group_size=max(self._buffered, 1))
            self._buffer, self._buffered = [], 0

    def _close_part(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None

    def commit(self) -> list[dict]:
        """Publishes the file; returns the batches (date, load id, source file, rows) by date."""
        tmp = temporary_path(self.path)
        with writing(self.path, tmp):
            self._close_part()
            tmp.parent.mkdir(parents=True, exist_ok=True)
            names = list(self.columns)
            if len(self.parts) == 1 and list(pl.read_parquet_schema(self.parts[0]).items()) == list(self.columns.items()):
                self.parts[0].replace(tmp)
            elif self.parts:
                scans = [pl.scan_parquet(p) for p in self.parts]
                full = [s.with_columns(pl.lit(None, self.columns[c]).alias(c) for c in names if c not in s.collect_schema())
                        .select(names) for s in scans]
                pl.concat(full).sink_parquet(tmp)
            else:  # every batch is empty: a file with the columns and no rows
                pl.DataFrame(schema=self.columns).write_parquet(tmp)
            tmp.replace(self.path)
        self.discard()
        return [{"batch_date": d, "load_id": load, "source_file": f, "rows": n}
                for (d, load, f), n in sorted(self.batches.items(), key=lambda kv: kv[0][0])]

    def discard(self) -> None:
        self._buffer, self._buffered = [], 0  # nothing more to write
        with contextlib.suppress(Exception):  # closing a part on a full disk fails again
            self._close_part()
        self._writer = None
        for part in self.parts:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)
        self.parts = []


def extract(
    source: SourceConfig, watermark: date | None, run_date: date, landing_dir: Path, owned: set[date] = frozenset()
) -> dict:
    """Lands the pending batches of one source; returns the path and per-batch counts for XCom."""
    if source.database:
        days = _database_batches(source, watermark, run_date, owned)
    elif source.is_day_partitioned:
        days = _partition_batches(source, watermark, run_date, owned)
    else:
        days = _export_batches(source, watermark, run_date, owned)
    out = landing_dir / source.kind / f"run_date={run_date.isoformat()}" / "part.parquet"
    writer = _LandingWriter(out)
    try:
        for frame in days:
            writer.add(frame)
        if not writer.pieces:
            writer.discard()
            log.info("source %s: no new data for %s (watermark %s)", source.kind, run_date, watermark)
            return {"kind": source.kind, "path": None, "rows": 0, "batches": []}
        batches = writer.commit()
    except BaseException:
        writer.discard()
        raise
    log.info("source %s: landed %d rows in %d batches", source.kind, writer.rows, len(batches))
    return {"kind": source.kind, "path": str(out), "rows": writer.rows, "batches": batches}


def _partition_batches(source: SourceConfig, watermark, run_date, owned) -> Iterator[pl.DataFrame]:
    """One frame per day file, read as it is asked for."""
    partitions = source.partitions()
    if not partitions:
        raise SourceMissingError(f"source {source.kind}: no files match {source.path_template.replace('{date}', '*')}")
    for day in days_to_extract(list(partitions), watermark, run_date, owned):
        path = partitions[day]
        frame, data = read_file(source, path)
        check_columns(frame, source, path.name)
        frame = with_lineage(frame, path.name, content_digest(source.kind, day, data)).with_columns(
            pl.lit(day.isoformat()).alias(BATCH)
        )
        if frame.is_empty():  # an empty file is an empty batch: recorded, so the day counts as loaded
            log.warning("source %s: %s is empty", source.kind, path.name)
            frame = _empty_batch(path.name, content_digest(source.kind, day, data), day)
        yield frame


def _empty_batch(source_file: str, load_id: str, day: date) -> pl.DataFrame:
    """A placeholder row (no row number) that carries an empty batch's lineage into the batch list."""
    return pl.DataFrame({"_source_file": [source_file], "_row_number": [None], "_load_id": [load_id], BATCH: [day.isoformat()]},
                        schema={"_source_file": pl.String, "_row_number": pl.Int64, "_load_id": pl.String, BATCH: pl.String})


def _export_batches(source: SourceConfig, watermark, run_date, owned) -> Iterator[pl.DataFrame]:
    path = Path(source.path_template)
    if not path.exists():
        raise SourceMissingError(f"source {source.kind}: {path} does not exist")
    frame, data = read_file(source, path)
    if frame.is_empty():
        log.warning("source %s: %s is empty", source.kind, path.name)
        return
    check_columns(frame, source, path.name)
    digest = content_digest(source.kind, None, data)
    del data
    frame = with_lineage(frame, path.name, digest).with_columns(event_dates(frame, source).cast(pl.String).alias(BATCH))
    yield _keep_days(frame, watermark, run_date, owned, per_day_load_id=digest)


def _database_batches(source: SourceConfig, watermark, run_date, owned) -> Iterator[pl.DataFrame]:
    db = source.database
    # The first load takes all history; later ones start at the earliest day they must (re)take.
    starts = [*owned, run_date, *([watermark + timedelta(days=1)] if watermark else [])]
    since = datetime.combine(min(starts), time(), tzinfo=timezone.utc) if watermark else None
    until = datetime.combine(run_date + timedelta(days=1), time(), tzinfo=timezone.utc)
    frame = read_database(db, since, until)
    if frame.is_empty():
        return
    check_columns(frame, source, db.label)
    digest = content_digest(source.kind, None, frame.write_ipc(None).getvalue())
    frame = with_lineage(frame, db.label, digest).with_columns(event_dates(frame, source).cast(pl.String).alias(BATCH))
    yield _keep_days(frame, watermark, run_date, owned, per_day_load_id=digest)


def _keep_days(frame: pl.DataFrame, watermark, run_date, owned, *, per_day_load_id: str) -> pl.DataFrame:
    """Keeps the batches this run should take and gives each its own load id."""
    days = [date.fromisoformat(d) for d in frame[BATCH].unique().sort().to_list()]
    keep = [d.isoformat() for d in days_to_extract(days, watermark, run_date, owned)]
    kept = frame.filter(pl.col(BATCH).is_in(keep))
    load_ids = pl.concat_str(pl.lit(per_day_load_id + "-"), pl.col(BATCH).str.replace_all("-", ""))
    return kept.with_columns(load_ids.alias("_load_id"))
