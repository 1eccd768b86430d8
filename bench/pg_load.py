"""PostgreSQL bulk load of staged order lines: our loader (replace_partitions, COPY) against pandas
`to_sql` as it is usually called, into the same warehouse table on the same private cluster."""
from __future__ import annotations

import polars as pl
import sqlalchemy as sa

from pipeline import tasks
from pipeline.warehouse import ensure_schema, make_engine, table_columns
from pipeline.warehouse.loader import replace_partitions


def order_table() -> str:
    """The table the load task fills with the staged order lines as they are."""
    try:
        from pipeline.warehouse.load import STAGING
    except ImportError:  # the single-layer warehouse: staged rows went straight to the fact table
        return getattr(tasks, "FACT_TABLES", {}).get("orders", "fct_order_line")
    return STAGING["orders"][0][1]


def read_frame(path: str, rows: int | None) -> pl.DataFrame:
    return pl.read_parquet(path, n_rows=rows)


def prepare(impl: str, url: str, frame: pl.DataFrame):
    """The input each side starts from, untimed: ours the staged Polars frame, pandas the same rows
    and table columns as a pandas DataFrame (an analyst has one in hand already)."""
    engine = make_engine(url)
    ensure_schema(engine)
    with engine.connect() as conn:
        columns = table_columns(conn, order_table())
    engine.dispose()
    return frame if impl == "ours" else frame.select(columns).to_pandas()


def truncate(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"TRUNCATE {order_table()}")
    engine.dispose()


def load(impl: str, url: str, prepared) -> int:
    engine = make_engine(url)
    try:
        if impl == "ours":
            days = prepared["batch_date"].unique().to_list()
            with engine.begin() as conn:
                return replace_partitions(conn, order_table(), prepared, key="batch_date", keys=days)
        prepared.to_sql(order_table(), engine, if_exists="append", index=False)
        return len(prepared)
    finally:
        engine.dispose()


def count(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT count(*) FROM {order_table()}")).scalar_one()
    engine.dispose()
    return rows
