"""Alembic environment: runs on the connection pipeline.warehouse.schema.upgrade hands over, inside
its transaction, so a migration and the catalog refresh after it commit together."""
from alembic import context

import pipeline.warehouse.schema  # noqa: F401  registers the DuckDB implementation

context.configure(connection=context.config.attributes["connection"], transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
