-- Replaces the touched order lines with their latest staged version (latest batch, then last source row).
-- row_number rather than DISTINCT ON: the same result, and about 3x faster on DuckDB. The UTC date is
-- counted in days from the epoch: DuckDB's time-zone cast took 10x as long (8 s for 46M answers at M).
DELETE FROM fct_order_line USING touched_order_line AS t
WHERE fct_order_line.order_id = t.order_id AND fct_order_line.line_number = t.line_number;
INSERT INTO fct_order_line (order_id, line_number, customer_id, customer_match, ordered_at,
       ordered_date, product_id, category, quantity, unit_price_amount,
       unit_cost_amount, currency, line_amount, line_cost_amount, channel, status,
       is_cancelled, is_returned, customer_country, batch_date, load_id)
SELECT order_id, line_number, customer_id, customer_match, ordered_at,
       DATE '1970-01-01' + CAST(floor(extract(epoch FROM ordered_at) / 86400) AS INTEGER), product_id, category, quantity, unit_price_amount,
       unit_cost_amount, currency, line_amount, line_cost_amount, channel, status, is_cancelled,
       is_returned, customer_country, batch_date, load_id
FROM (SELECT s.*, row_number() OVER (PARTITION BY s.order_id, s.line_number
                                     ORDER BY s.batch_date DESC, s.source_row_number DESC) AS version_rank
      FROM stg_order_line AS s
      WHERE EXISTS (SELECT 1 FROM touched_order_line AS t
                    WHERE t.order_id = s.order_id AND t.line_number = s.line_number)) AS latest
WHERE version_rank = 1
