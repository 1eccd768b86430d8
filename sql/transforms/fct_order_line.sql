-- Replaces the touched order lines with their latest staged version (latest batch, then last source row).
-- The versions are ranked on the key columns alone, then the winners' rows are joined back: ranking
-- whole rows carried every column through the sort and took twice as long on DuckDB at M.
-- row_number rather than DISTINCT ON: the same result, and about 3x faster on DuckDB. The UTC date is
-- counted in days from the epoch: DuckDB's time-zone cast took 10x as long (8 s for 46M answers at M).
CREATE TEMPORARY TABLE latest_order_line AS
SELECT order_id, line_number, batch_date, source_row_number
FROM (SELECT s.order_id, s.line_number, s.batch_date, s.source_row_number,
             row_number() OVER (PARTITION BY s.order_id, s.line_number
                                ORDER BY s.batch_date DESC, s.source_row_number DESC) AS version_rank
      FROM stg_order_line AS s
      WHERE EXISTS (SELECT 1 FROM touched_order_line AS t
                    WHERE t.order_id = s.order_id AND t.line_number = s.line_number)) AS ranked
WHERE version_rank = 1;
DELETE FROM fct_order_line USING touched_order_line AS t
WHERE fct_order_line.order_id = t.order_id AND fct_order_line.line_number = t.line_number;
INSERT INTO fct_order_line (order_id, line_number, customer_id, customer_match, ordered_at,
       ordered_date, product_id, category, quantity, unit_price_amount,
       unit_cost_amount, currency, line_amount, line_cost_amount, channel, status,
       is_cancelled, is_returned, customer_country, batch_date, load_id)
SELECT s.order_id, s.line_number, s.customer_id, s.customer_match, s.ordered_at,
       DATE '1970-01-01' + CAST(floor(extract(epoch FROM s.ordered_at) / 86400) AS INTEGER), s.product_id, s.category,
       s.quantity, s.unit_price_amount, s.unit_cost_amount, s.currency, s.line_amount, s.line_cost_amount, s.channel,
       s.status, s.is_cancelled, s.is_returned, s.customer_country, s.batch_date, s.load_id
FROM stg_order_line AS s
JOIN latest_order_line AS l
  ON l.order_id = s.order_id AND l.line_number = s.line_number AND l.batch_date = s.batch_date
 AND l.source_row_number = s.source_row_number;
DROP TABLE latest_order_line
