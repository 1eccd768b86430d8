"""PostgreSQL bulk load of staged order lines into the same warehouse table on the same private
cluster, one implementation per job:

- `ours`: the loader as the load task calls it (replace_partitions: binary COPY encoded from Arrow);
- `ours_csv`: the loader's text path (Polars CSV slices into COPY ... FORMAT csv), the one before;
- `adbc`: ADBC's PostgreSQL driver (`adbc_ingest`, its own binary COPY), on its own connection;
- `copy_only`: the server-side ceiling: the rows pre-encoded (untimed), then one bare binary COPY
  of them into the table, which has no index;
- `copy_parallel`: the same pre-encoded rows in two bare COPY streams at once, on two connections
  (two transactions): what the server takes on this machine with both cores on it;
- `pandas`: pandas `to_sql` as it is usually called.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl
import sqlalchemy as sa

from pipeline.warehouse import ensure_schema, make_engine, pg_binary, table_column_types
from pipeline.warehouse.loader import _copy_csv, replace_partitions

IMPLS = ("ours", "ours_csv", "adbc", "copy_only", "copy_parallel", "pandas")
STREAMS = 2  # copy_parallel: one COPY stream per core


def order_table() -> str:
    """The table the load task fills with the staged order lines as they are."""
    from pipeline.warehouse.load import STAGING

    return STAGING["orders"][0][1]


def read_frame(path: str, rows: int | None) -> pl.DataFrame:
    return pl.read_parquet(path, n_rows=rows)


def prepare(impl: str, url: str, frame: pl.DataFrame):
    """The input each side starts from, untimed: ours the staged Polars frame, pandas the same rows
    and table columns as a pandas DataFrame (an analyst has one in hand already), ADBC an Arrow
    table, copy_only the encoded COPY data."""
    if impl not in IMPLS:
        raise ValueError(f"unknown pg_load implementation {impl!r}; one of {IMPLS}")
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.connect() as conn:
        types = table_column_types(conn, order_table())
    engine.dispose()
    if impl in ("ours", "ours_csv"):
        return frame
    frame = frame.select(list(types))
    if impl == "pandas":
        return frame.to_pandas()
    if impl == "adbc":
        return frame.to_arrow()
    fmt = pg_binary.row_format(list(types.values()), [frame[c].null_count() > 0 for c in frame.columns])
    frame = frame.select([frame.columns[i] for i in fmt.order])
    return frame.columns, [pg_binary.encode(chunk, fmt) for chunk in frame.iter_slices(200_000)]


def truncate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {order_table()}")
    engine.dispose()


def load(impl: str, url: str, prepared) -> int:
    if impl == "adbc":
        return _load_adbc(url, prepared)
    if impl == "copy_parallel":
        columns, buffers = prepared
        with ThreadPoolExecutor(STREAMS) as pool:  # psycopg sends without the GIL
            return sum(pool.map(lambda part: load("copy_only", url, (columns, part)),
                                [buffers[i::STREAMS] for i in range(STREAMS)]))
    engine = make_engine(url)
    try:
        if impl == "pandas":
            prepared.to_sql(order_table(), engine, if_exists="append", index=False)
            return len(prepared)
        with engine.begin() as conn:
            if impl == "copy_only":
                return _copy_encoded(conn, *prepared)
            if impl == "ours_csv":
                _copy_csv(conn, order_table(), prepared.select(list(table_column_types(conn, order_table()))))
                return prepared.height
            days = prepared["batch_date"].unique().to_list()
            return replace_partitions(conn, order_table(), prepared, key="batch_date", keys=days)
    finally:
        engine.dispose()


def _copy_encoded(conn: sa.Connection, columns: list[str], buffers: list) -> int:
    cursor = conn.connection.driver_connection.cursor()
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in columns)
    with cursor.copy(f"COPY {order_table()} ({quoted}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(pg_binary.SIGNATURE)
        for buffer in buffers:
            copy.write(memoryview(buffer))
        copy.write(pg_binary.TRAILER)
    return cursor.rowcount


def _load_adbc(url: str, table) -> int:
    import adbc_driver_postgresql.dbapi as adbc

    libpq = sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with adbc.connect(libpq) as conn, conn.cursor() as cursor:
        rows = cursor.adbc_ingest(order_table(), table, mode="append")
        conn.commit()
    return rows if rows >= 0 else table.num_rows


def count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT count(*) FROM {order_table()}")).scalar_one()
    engine.dispose()
    return rows
