"""Operations release: run records for backfills, KPI threshold checks with dynamic bounds, stored
model fits, and fact tables without primary-key indexes.

Brings a warehouse created by release 0001 to the current sql/tables files; on a warehouse that 0001
created from these files already, every step finds its work done and does nothing.

- new tables etl_run (seeded with the run dates already loaded), kpi_threshold_check, model_fit;
- kpi_alert gains threshold_kind and the dynamic-threshold columns, and threshold_kind joins its key:
  rebuilt, old alerts kept as 'fixed' ones;
- model_quality gains fit_source;
- fct_order_line and fct_order lose their primary keys: unique by construction (the load rebuilds
  them), and DuckDB's index upkeep made a first load several times slower. PostgreSQL drops the
  constraint; DuckDB cannot, so the table is rebuilt with its rows. (fct_survey_answer lost its key
  here too until revision 0003 made it a view; 0003 drops the table, key and all.)

Views are dropped first, since a rebuilt table must not have dependants; pipeline.warehouse.schema
re-applies them right after, because the migration head is part of the catalog digest.

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa

from pipeline.warehouse import SQL_DIR, drop_catalog_views, run_script, sql_text, statements, table_columns

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = ("etl_run", "kpi_threshold_check", "model_fit")
UNINDEXED_FACTS = ("fct_order_line", "fct_order")


def upgrade() -> None:
    conn = op.get_bind()
    drop_catalog_views(conn)
    created = [table for table in NEW_TABLES if not table_columns(conn, table)]
    for table in created:
        _create(conn, table)
    if "etl_run" in created:
        run_script(conn, "migrations/0002_seed_etl_run")
    if "threshold_kind" not in table_columns(conn, "kpi_alert"):
        _rebuild(conn, "kpi_alert", copy_script="migrations/0002_copy_kpi_alert")
    if "fit_source" not in table_columns(conn, "model_quality"):
        op.add_column("model_quality", sa.Column("fit_source", sa.String))
    for table in UNINDEXED_FACTS:
        _drop_primary_key(conn, table)


def _create(conn: sa.Connection, table: str) -> None:
    for statement in statements((SQL_DIR / "tables" / f"{table}.sql").read_text(encoding="utf-8")):
        conn.exec_driver_sql(statement)


def _rebuild(conn: sa.Connection, table: str, copy_script: str | None = None) -> None:
    """The table recreated from its file, its rows copied over: by `copy_script` (reading
    legacy_<table>), or column for column when only constraints changed."""
    legacy = f"legacy_{table}"
    op.rename_table(table, legacy)
    _create(conn, table)
    if copy_script:
        run_script(conn, copy_script)
    else:
        preparer = conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(c) for c in table_columns(conn, table))
        conn.exec_driver_sql(f"INSERT INTO {preparer.quote(table)} ({columns}) "
                             f"SELECT {columns} FROM {preparer.quote(legacy)}")
    op.drop_table(legacy)


def _drop_primary_key(conn: sa.Connection, table: str) -> None:
    name = conn.execute(sa.text(sql_text("queries/primary_key_name")), {"table": table}).scalar()
    if name is None:
        return
    if conn.dialect.name == "duckdb":  # no ALTER TABLE ... DROP CONSTRAINT in DuckDB
        _rebuild(conn, table)
    else:
        op.drop_constraint(name, table, type_="primary")
