-- Every table and view column in the warehouse schemas with the object's and the column's comment
-- (DuckDB keeps no comments on view columns).
SELECT CASE WHEN o.schema_name = current_schema() THEN o.object_name ELSE o.schema_name || '.' || o.object_name END
           AS object_name,
       o.object_kind,
       o.object_comment,
       c.column_name,
       c.comment AS column_comment
FROM (SELECT schema_name, table_name AS object_name, 'table' AS object_kind, comment AS object_comment
      FROM duckdb_tables() WHERE NOT temporary AND database_name = current_database()
      UNION ALL
      SELECT schema_name, view_name, 'view', comment
      FROM duckdb_views() WHERE NOT internal AND NOT temporary AND database_name = current_database()) AS o
JOIN duckdb_columns() AS c
  ON c.schema_name = o.schema_name AND c.table_name = o.object_name AND c.database_name = current_database()
WHERE o.schema_name IN (current_schema(), 'restricted') AND o.object_name <> 'alembic_version'
ORDER BY object_name, c.column_index
