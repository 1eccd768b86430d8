"""Warehouse access: engines, the named statements in sql/, and catalog lookups."""
from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa

from pipeline.settings import PROJECT_ROOT, duckdb_memory_limit

SQL_DIR = PROJECT_ROOT / "sql"


def make_engine(url: str) -> sa.Engine:
    if url.startswith("duckdb:"):
        return _duckdb_engine(url)
    # Dates cut from timestamps must not depend on the server's zone (libpq drivers take options).
    utc = {"options": "-c timezone=UTC"} if sa.engine.make_url(url).get_backend_name() == "postgresql" else {}
    return sa.create_engine(url, pool_pre_ping=True, connect_args=utc)


def _duckdb_engine(url: str) -> sa.Engine:
    """DuckDB allows one process per file: a connection waits for an exclusive lock on a sibling
    file first, so parallel tasks queue instead of failing with "could not set lock"."""
    path = Path(url.split(":///", 1)[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, poolclass=sa.NullPool)

    @sa.event.listens_for(engine, "do_connect")
    def _lock(dialect, record, cargs, cparams):
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            connection = _open_duckdb(dialect, cargs, cparams)
        except BaseException:
            os.close(fd)
            raise
        record.info["lock_fd"] = fd
        return connection

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection, record):
        # DuckDB draws a progress bar even without a terminal, and only takes the setting per connection.
        dbapi_connection.execute("SET enable_progress_bar = false")
        dbapi_connection.execute("SET TimeZone = 'UTC'")
        limit = duckdb_memory_limit()
        try:
            dbapi_connection.execute("SET memory_limit = ?", [limit])
        except Exception as exc:  # DuckDB's parser error does not say where the value came from
            raise ValueError(f"CRM_DUCKDB_MEMORY_LIMIT {limit!r} is not a size or a share of RAM: {exc}") from exc

    @sa.event.listens_for(engine, "close")
    def _unlock(dbapi_connection, record):
        fd = record.info.pop("lock_fd", None)
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock

    return engine


def _open_duckdb(dialect, cargs, cparams, wait_seconds: float = 120.0):
    """The previous holder may still be closing its database (DuckDB releases the file when the last
    reference to it is collected, just after the lock above is freed): retry briefly, then give up."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as error:
            if "Could not set lock" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@lru_cache(maxsize=None)
def sql_text(name: str) -> str:
    """A named statement from sql/, e.g. 'queries/watermark'."""
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


def statements(script: str) -> list[str]:
    """A script's statements: split at a ';' ending a line, except inside a $$-quoted body."""
    parts, current, quoted = [], [], False
    for line in script.splitlines():
        current.append(line)
        quoted ^= line.count("$$") % 2 == 1
        if not quoted and line.rstrip().endswith(";"):
            parts.append("\n".join(current).rstrip().rstrip(";"))
            current = []
    parts.append("\n".join(current))
    return [p for p in parts if _code(p)]


def _code(statement: str) -> str:
    return re.sub(r"--[^\n]*", "", statement).strip()


def run_script(conn: sa.Connection, name: str, **params) -> None:
    """Runs every statement of sql/<name>.sql on the caller's connection (and transaction); a list
    parameter binds as an expanding IN list."""
    for statement in statements(sql_text(name)):
        used = {k: v for k, v in params.items() if f":{k}" in statement}
        clause = sa.text(statement)
        expanding = [sa.bindparam(k, expanding=True) for k, v in used.items() if isinstance(v, (list, tuple))]
        conn.execute(clause.bindparams(*expanding) if expanding else clause, used)


def split_name(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return schema or None, name


def table_ref(table: str, columns: list[str] = ()) -> sa.TableClause:
    """A quoted reference to "name" or "schema.name" for SQLAlchemy statements."""
    schema, name = split_name(table)
    return sa.table(name, *(sa.column(c) for c in columns), schema=schema)


def table_columns(conn: sa.Connection, table: str) -> list[str]:
    """Column names in table order."""
    return list(table_column_types(conn, table))


def table_column_types(conn: sa.Connection, table: str) -> dict[str, str]:
    """Column name -> information_schema data_type (e.g. 'integer', 'timestamp with time zone' on
    PostgreSQL), in table order; information_schema works on DuckDB and PostgreSQL alike."""
    schema, name = split_name(table)
    query = (
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = :t AND table_schema = coalesce(:s, current_schema()) ORDER BY ordinal_position"
    )
    return {column: data_type for column, data_type in conn.execute(sa.text(query), {"t": name, "s": schema})}


def object_kind(conn: sa.Connection, name: str) -> str | None:
    """'BASE TABLE' or 'VIEW' for a name in the current schema; None when nothing has it."""
    return conn.execute(sa.text(sql_text("queries/object_kind")), {"name": name}).scalar()


def drop_catalog_views(conn: sa.Connection) -> None:
    """Drops the views of sql/views that exist as views, so a migration may rebuild the tables under
    them (the schema re-applies them after). A name that is still a table is left alone."""
    preparer = conn.dialect.identifier_preparer
    for path in sorted((SQL_DIR / "views").glob("*.sql")):
        if object_kind(conn, path.stem) == "VIEW":
            conn.exec_driver_sql(f"DROP VIEW {preparer.quote(path.stem)}")


def ensure_schema(engine: sa.Engine) -> None:
    """Brings the warehouse to the current schema (Alembic migrations, views, comments, grants)."""
    from pipeline.warehouse.schema import upgrade

    upgrade(engine)


@contextmanager
def connected(url: str, *, transaction: bool = False, upgrade: bool = True) -> Iterator[sa.Connection]:
    """A connection to the warehouse at `url`, brought to the current schema first unless `upgrade`
    is False; one transaction when `transaction`. The engine is disposed of afterwards: each task is
    its own short process, and DuckDB's file lock must be released."""
    engine = make_engine(url)
    try:
        if upgrade:
            ensure_schema(engine)
        with engine.begin() if transaction else engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
