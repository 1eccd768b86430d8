-- The primary-key constraint of a table in the current schema, if it has one (DuckDB and PostgreSQL).
SELECT constraint_name
FROM information_schema.table_constraints
WHERE table_schema = current_schema() AND table_name = :table AND constraint_type = 'PRIMARY KEY'
