"""Warehouse access: engines, the schema in sql/, and named queries."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

from pipeline.settings import PROJECT_ROOT

SQL_DIR = PROJECT_ROOT / "sql"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("duckdb:"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        # DuckDB draws a progress bar even without a terminal, and only takes the setting per connection.
        sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.execute("SET enable_progress_bar = false"))
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=None)
def sql_text(name: str) -> str:
    """A named statement from sql/, e.g. 'queries/watermark'."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def ensure_schema(engine: sa.Engine) -> None:
    """Creates missing tables from sql/tables/; idempotent."""
    with engine.begin() as conn:
        for path in sorted((SQL_DIR / "tables").glob("*.sql")):
            conn.exec_driver_sql(path.read_text(encoding="utf-8"))


def table_columns(conn: sa.Connection, table: str) -> list[str]:
    """Column names in table order; information_schema works on DuckDB and PostgreSQL alike."""
    rows = conn.execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema() ORDER BY ordinal_position"
        ),
        {"t": table},
    ).scalars()
    return list(rows)
