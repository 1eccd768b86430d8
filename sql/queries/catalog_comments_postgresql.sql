-- Every table and view column in the warehouse schemas with the object's and the column's comment.
SELECT CASE WHEN n.nspname = current_schema() THEN c.relname ELSE n.nspname || '.' || c.relname END AS object_name,
       CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END AS object_kind,
       obj_description(c.oid, 'pg_class') AS object_comment,
       a.attname AS column_name,
       col_description(c.oid, a.attnum) AS column_comment
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname IN (current_schema(), 'restricted') AND c.relkind IN ('r', 'v') AND c.relname <> 'alembic_version'
ORDER BY object_name, a.attnum
