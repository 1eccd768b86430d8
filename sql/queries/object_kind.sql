-- What a name in the current schema is: 'BASE TABLE', 'VIEW', or no row (DuckDB and PostgreSQL).
SELECT table_type
FROM information_schema.tables
WHERE table_schema = current_schema() AND table_name = :name
