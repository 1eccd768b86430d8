-- One row: the digest of the views, comments and grants last applied from sql/ (with the migration
-- head), so they are re-applied only when they change.
CREATE TABLE IF NOT EXISTS etl_schema_state (
    catalog_digest VARCHAR NOT NULL -- SHA-256 over the migration head and the sql/ object files
)
