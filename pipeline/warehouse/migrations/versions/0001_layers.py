"""Layered warehouse: stg_ tables with every staged version, fct_ tables with the latest, dim_customer
as SCD type 2, dim_date, restricted.customer_pii.

Creates every table in sql/tables that is missing. A warehouse made before migrations existed (by
ensure_schema, with fct_ tables holding every version) is upgraded in place first: its fct_ tables
become the stg_ tables, customer_pii moves to the restricted schema, and the customer-master rows of
the old dim_customer become stg_customer rows; the new fct_ tables and dim_customer history are then
derived from them. Nothing loaded is lost.

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa

from pipeline.warehouse import SQL_DIR, run_script, statements, table_columns

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RENAMED = {"fct_order_line": "stg_order_line", "fct_survey_response": "stg_survey_response",
           "fct_survey_answer": "stg_survey_answer", "fct_complaint": "stg_complaint"}


def upgrade() -> None:
    conn = op.get_bind()
    legacy = "source_row_number" in table_columns(conn, "fct_order_line")
    if legacy:
        _rename_legacy_tables(conn)
    for path in sorted((SQL_DIR / "tables").glob("*.sql")):
        for statement in statements(path.read_text(encoding="utf-8")):
            conn.exec_driver_sql(statement)
    if legacy:
        _adopt_legacy_rows(conn)


def _rename_legacy_tables(conn: sa.Connection) -> None:
    for old, new in RENAMED.items():
        op.rename_table(old, new)
    op.rename_table("dim_customer", "legacy_dim_customer")
    op.rename_table("customer_pii", "legacy_customer_pii")


def _adopt_legacy_rows(conn: sa.Connection) -> None:
    run_script(conn, "migrations/0001_adopt_legacy_rows")
    conn.execute(sa.text("DROP TABLE legacy_dim_customer"))
    conn.execute(sa.text("DROP TABLE legacy_customer_pii"))
    batches = list(conn.execute(sa.text("SELECT DISTINCT batch_date FROM etl_batch ORDER BY 1")).scalars())
    if batches:
        for kind in ("order_line", "survey_response", "complaint"):
            run_script(conn, f"transforms/touched_{kind}", dates=batches)
        for script in ("fct_order_line", "fct_order", "fct_survey_response", "fct_complaint"):
            run_script(conn, f"transforms/{script}")
    first = conn.execute(sa.text("SELECT min(as_of_date) FROM customer_score_daily")).scalar()
    if first is not None:
        run_script(conn, "transforms/dim_customer", as_of=first)
        run_script(conn, "transforms/dim_customer_attributes")
