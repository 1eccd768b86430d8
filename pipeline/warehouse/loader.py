"""One loading interface, with a bulk backend per dialect.

`replace_partitions` deletes a table's partitions and inserts their new rows on the caller's
connection, so a whole run commits or rolls back as one transaction; `replace_partitions_from_parquet`
does the same with the rows in a lake layer's Parquet files.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipeline.warehouse import pg_binary, table_column_types, table_ref
from pipeline.warehouse.failpoints import failpoint


def replace_partitions(
    conn: sa.Connection,
    table: str,
    frame: pl.DataFrame | None,
    *,
    key: str | None,
    keys: Sequence[Any] = (),
    scope: sa.ColumnElement[bool] | None = None,
) -> int:
    """Replace rows whose `key` is in `keys` (all rows when key is None), within `scope`, with `frame`
    (None: the partitions are now empty)."""
    types = _column_types(conn, table)
    frame = frame if frame is not None else pl.DataFrame()
    if frame.height:
        _check_columns(table, list(types), frame.columns)
    _delete_partitions(conn, table, list(types), key, keys, scope)
    if frame.height:
        _BACKENDS.get(conn.dialect.name, _insert_portable)(conn, table, frame.select(list(types)), list(types.values()))
    return frame.height


def replace_partitions_from_parquet(
    conn: sa.Connection,
    table: str,
    files: Sequence[Path],
    *,
    key: str | None,
    keys: Sequence[Any] = (),
    scope: sa.ColumnElement[bool] | None = None,
    group_rows: int = 2_000_000,
) -> int:
    """replace_partitions with the new rows in Parquet files (a lake layer's partitions). DuckDB
    reads them itself, in one statement and in parallel, so the rows never pass through Python;
    other warehouses get them in groups of files of about `group_rows` rows, so a whole history
    is never in memory at once."""
    types = _column_types(conn, table)
    files = [str(f) for f in files]
    if files:
        _check_columns(table, list(types), list(pl.read_parquet_schema(files[0])))
    _delete_partitions(conn, table, list(types), key, keys, scope)
    if not files:
        return 0
    if conn.dialect.name == "duckdb":
        return _insert_duckdb_parquet(conn, table, files, list(types))
    rows = 0
    for group in _file_groups(files, group_rows):
        frame = pl.read_parquet(group, columns=list(types), hive_partitioning=False)
        _BACKENDS.get(conn.dialect.name, _insert_portable)(conn, table, frame, list(types.values()))
        rows += frame.height
    return rows


def _column_types(conn: sa.Connection, table: str) -> dict[str, str]:
    types = table_column_types(conn, table)
    if not types:
        raise LookupError(f"warehouse table {table!r} does not exist; run the schema setup first")
    return types


def _delete_partitions(conn: sa.Connection, table: str, columns: list[str], key: str | None, keys: Sequence[Any],
                       scope: sa.ColumnElement[bool] | None) -> None:
    target = table_ref(table, columns)
    delete = sa.delete(target) if scope is None else sa.delete(target).where(scope)
    if key is None:
        conn.execute(delete)
    elif keys:
        conn.execute(delete.where(sa.column(key).in_(list(keys))))


def _check_columns(table: str, columns: list[str], given: list[str]) -> None:
    missing = [c for c in columns if c not in given]
    if missing:
        raise ValueError(f"frame for {table} lacks columns {missing}")


def _file_groups(files: list[str], group_rows: int) -> list[list[str]]:
    """Consecutive files, grouped up to about group_rows rows (from the Parquet footers)."""
    groups, current, rows = [], [], 0
    for path in files:
        count = pq.ParquetFile(path).metadata.num_rows
        if current and rows + count > group_rows:
            groups.append(current)
            current, rows = [], 0
        current.append(path)
        rows += count
    return groups + [current] if current else groups


def _quoted(conn: sa.Connection, table: str, columns: list[str]) -> tuple[str, str]:
    preparer = conn.dialect.identifier_preparer
    return preparer.format_table(table_ref(table)), ", ".join(preparer.quote(c) for c in columns)


def _insert_duckdb(conn: sa.Connection, table: str, frame: pl.DataFrame, types: list[str]) -> None:
    """DuckDB scans the Arrow buffers in place: no row conversion at all."""
    name, cols = _quoted(conn, table, frame.columns)
    failpoint("load:mid_copy")  # one statement: the nearest point is just before it
    duck = conn.connection.driver_connection
    duck.register("_incoming", frame.to_arrow())
    try:
        conn.exec_driver_sql(f"INSERT INTO {name} ({cols}) SELECT {cols} FROM _incoming")
    finally:
        duck.unregister("_incoming")


_COPY_SLICE_ROWS = 200_000


def _insert_postgresql(conn: sa.Connection, table: str, frame: pl.DataFrame, types: list[str]) -> None:
    """Binary COPY encoded from Arrow (pg_binary): the server receives values, not text to parse,
    which halved the server's time against CSV. Slices keep the encoded copy in memory a slice's
    worth; a writer thread sends one slice while the next is encoded."""
    from psycopg.copy import QueuedLibpqWriter

    if not pg_binary.supports(types):
        return _copy_csv(conn, table, frame)
    fmt = pg_binary.row_format(types, [frame[c].null_count() > 0 for c in frame.columns])
    frame = frame.select([frame.columns[i] for i in fmt.order])
    name, cols = _quoted(conn, table, frame.columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT binary)",
                     writer=QueuedLibpqWriter(cursor)) as copy:
        copy.write(pg_binary.SIGNATURE)
        for chunk in frame.iter_slices(_COPY_SLICE_ROWS):
            copy.write(memoryview(pg_binary.encode(chunk, fmt)))
            failpoint("load:mid_copy")
        copy.write(pg_binary.TRAILER)


def _copy_csv(conn: sa.Connection, table: str, frame: pl.DataFrame) -> None:
    """COPY from Polars' CSV writer, for column types pg_binary has no encoder for."""
    name, cols = _quoted(conn, table, frame.columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {name} ({cols}) FROM STDIN (FORMAT csv, NULL '\\N')") as copy:
        for chunk in frame.iter_slices(_COPY_SLICE_ROWS):
            buffer = io.BytesIO()
            # Quoting every text value keeps a literal "\N" in a comment from being read as NULL.
            chunk.write_csv(buffer, include_header=False, null_value=r"\N", quote_style="non_numeric",
                            datetime_format="%Y-%m-%d %H:%M:%S%.f%:z")
            copy.write(buffer.getbuffer())
            failpoint("load:mid_copy")


def _insert_duckdb_parquet(conn: sa.Connection, table: str, files: list[str], columns: list[str]) -> int:
    """DuckDB's own Parquet reader straight into the table: no Polars frame, no Arrow hand-over."""
    name, cols = _quoted(conn, table, columns)
    failpoint("load:mid_copy")  # one statement: the nearest point is just before it
    # The partition value is a column in every file: hive_partitioning off, so the path cannot add it.
    inserted = conn.connection.driver_connection.execute(
        f"INSERT INTO {name} ({cols}) SELECT {cols} FROM read_parquet($files, union_by_name = true, "
        "hive_partitioning = false)", {"files": files}).fetchone()
    return int(inserted[0])


def _insert_portable(conn: sa.Connection, table: str, frame: pl.DataFrame, types: list[str]) -> None:
    target = table_ref(table, frame.columns)
    for chunk in frame.iter_slices(10_000):
        conn.execute(sa.insert(target), chunk.to_dicts())


_BACKENDS = {"duckdb": _insert_duckdb, "postgresql": _insert_postgresql}
