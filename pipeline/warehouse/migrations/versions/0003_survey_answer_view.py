"""Survey answers stored once, narrow:

- fct_survey_answer becomes a view (sql/views/fct_survey_answer.sql): the staged answers of the
  response version fct_survey_response keeps. The table was a second copy of the warehouse's largest
  layer (46M rows at M) and half of a first load's writing. Its rows are exactly what the view
  returns, so dropping it loses nothing.
- stg_survey_answer loses the columns its response row already holds (customer, time, lineage): the
  stg_survey_response row of the same response_id and batch_date has them. Halves its load.

The schema re-applies the views right after, because the migration head is part of the catalog digest.

Revision ID: 0003
Revises: 0002
"""
from alembic import op

from pipeline.warehouse import drop_catalog_views, object_kind, table_columns

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

RESPONSE_COLUMNS = ("customer_id", "responded_at", "load_id", "source_file", "source_row_number")


def upgrade() -> None:
    conn = op.get_bind()
    drop_catalog_views(conn)
    if object_kind(conn, "fct_survey_answer") == "BASE TABLE":
        op.drop_table("fct_survey_answer")
    present = table_columns(conn, "stg_survey_answer")
    for column in RESPONSE_COLUMNS:
        if column in present:
            op.drop_column("stg_survey_answer", column)
