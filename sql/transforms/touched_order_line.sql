-- Order-line keys of the run's batch dates; run before and after their staging rows are replaced, so
-- that a key a reprocessed batch no longer holds is rebuilt too (from an older version, or removed).
CREATE TEMPORARY TABLE IF NOT EXISTS touched_order_line (order_id VARCHAR, line_number INTEGER);
INSERT INTO touched_order_line SELECT order_id, line_number FROM stg_order_line WHERE batch_date IN :dates
