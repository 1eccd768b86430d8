"""The warehouse schema: Alembic migrations, then the catalog objects re-applied when sql/ changes.

Tables are created and upgraded only by migrations (pipeline/warehouse/migrations). Views, comments
and the BI role's grants hold no data, so they are re-applied from sql/ whenever their text (or the
migration head) differs from what the warehouse last recorded in etl_schema_state.

Comments come from the object files themselves: the `--` lines above CREATE describe the object
(its grain first), and a trailing `-- ...` on a column line describes that column.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.ddl.postgresql import PostgresqlImpl
from sqlalchemy.schema import SetColumnComment, SetTableComment

from pipeline.warehouse import SQL_DIR, run_script, split_name, sql_text, statements

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
BI_ROLE = "crm_bi"  # fixed, so grants never take an identifier from config; BI logins are granted this role
_CREATE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW)\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.]+)", re.I)
_SCHEMA_LOCK_KEY = 0x63726D  # pg_advisory_xact_lock key serializing schema upgrades ("crm")


class DuckDBImpl(PostgresqlImpl):
    """Alembic has no DuckDB dialect; DuckDB speaks PostgreSQL DDL and has transactional DDL."""

    __dialect__ = "duckdb"
    transactional_ddl = True


@dataclass(frozen=True)
class SqlObject:
    kind: str  # "table" or "view"
    name: str  # with its schema when not the default one, e.g. "restricted.customer_pii"
    comment: str
    column_comments: dict[str, str]
    path: Path


def sql_objects(folder: str) -> list[SqlObject]:
    return [parse_object(path) for path in sorted((SQL_DIR / folder).glob("*.sql"))]


def parse_object(path: Path) -> SqlObject:
    text = path.read_text(encoding="utf-8")
    match = _CREATE.search(text)
    if match is None:
        raise ValueError(f"{path} has no CREATE TABLE or CREATE VIEW")
    header = [line[2:].strip() for line in text[: match.start()].splitlines() if line.startswith("--")]
    columns = {}
    for line in text[match.end():].splitlines():
        code, _, note = line.partition(" -- ")
        name = _column_name(code, match.group(1).lower())
        if note and name:
            columns[name] = note.strip()
    return SqlObject(match.group(1).lower(), match.group(2), " ".join(header), columns, path)


def _column_name(code: str, kind: str) -> str | None:
    code = code.strip().rstrip(",").strip()
    if not code:
        return None
    if kind == "table":
        return code.split()[0]
    alias = re.search(r"(?:\bAS\s+|\.|^)(\w+)$", code, re.I)  # "x AS name", "d.name" or "name"
    return alias.group(1) if alias else None


def upgrade(engine: sa.Engine) -> None:
    """Migrates to the head revision, then re-applies views, comments and grants if they changed.
    One transaction: a failed upgrade leaves the warehouse as it was."""
    with engine.begin() as conn, _schema_lock(conn):
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        digest = _catalog_digest(conn)
        if _recorded_digest(conn) != digest:
            apply_catalog(conn)
            conn.execute(sa.text("DELETE FROM etl_schema_state"))
            conn.execute(sa.text("INSERT INTO etl_schema_state (catalog_digest) VALUES (:d)"), {"d": digest})


@contextmanager
def _schema_lock(conn: sa.Connection) -> Iterator[None]:
    """Concurrent tasks upgrading one PostgreSQL warehouse queue here (DuckDB: the file lock)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY})
    yield


def _catalog_digest(conn: sa.Connection) -> str:
    head = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    digest = hashlib.sha256(str(head).encode())
    for folder in ("tables", "views", "grants"):
        for path in sorted((SQL_DIR / folder).glob("*.sql")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _recorded_digest(conn: sa.Connection) -> str | None:
    return conn.execute(sa.text("SELECT max(catalog_digest) FROM etl_schema_state")).scalar()


def apply_catalog(conn: sa.Connection) -> None:
    for view in sql_objects("views"):
        for statement in statements(view.path.read_text(encoding="utf-8")):
            conn.exec_driver_sql(statement)
    for obj in [*sql_objects("tables"), *sql_objects("views")]:
        _comment(conn, obj)
    if conn.dialect.name == "postgresql":
        run_script(conn, "grants/bi_reader")


def _comment(conn: sa.Connection, obj: SqlObject) -> None:
    schema, name = split_name(obj.name)
    table = sa.Table(name, sa.MetaData(), *(sa.Column(c, sa.String, comment=t) for c, t in obj.column_comments.items()),
                     schema=schema, comment=obj.comment)
    if obj.kind == "view":
        _comment_view(conn, table)
    else:
        conn.execute(SetTableComment(table))
    if obj.kind == "table" or conn.dialect.name != "duckdb":  # DuckDB has no column comments on views
        for column in table.columns:
            conn.execute(SetColumnComment(column))


def _comment_view(conn: sa.Connection, view: sa.Table) -> None:
    """SQLAlchemy has no COMMENT ON VIEW construct and DDL takes no bound values: the name is quoted
    and the text rendered as a literal by the dialect itself."""
    name = conn.dialect.identifier_preparer.format_table(view)
    text = sa.literal(view.comment).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    conn.exec_driver_sql(f"COMMENT ON VIEW {name} IS {text}")


def catalog_comments(conn: sa.Connection) -> list[dict]:
    """The comments the warehouse actually carries: one dict per object column (object_name,
    object_kind, object_comment, column_name, column_comment)."""
    query = sql_text(f"queries/catalog_comments_{conn.dialect.name}")
    return [dict(row._mapping) for row in conn.execute(sa.text(query))]
