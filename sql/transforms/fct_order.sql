-- Rebuilds the orders of the touched lines from fct_order_line, then drops the touched keys. Sums
-- run in DECIMAL: a parallel floating-point sum can differ in its last bits from one run to the next.
DELETE FROM fct_order WHERE order_id IN (SELECT order_id FROM touched_order_line);
INSERT INTO fct_order (order_id, customer_id, ordered_at, ordered_date, channel, currency, line_count, item_quantity,
                       gross_amount, net_amount, cost_amount, is_cancelled, has_return, batch_date)
SELECT l.order_id, min(l.customer_id), min(l.ordered_at), min(l.ordered_date), min(l.channel), min(l.currency),
       CAST(count(*) AS INTEGER), CAST(sum(l.quantity) AS BIGINT),
       CAST(coalesce(sum(CASE WHEN l.quantity > 0 THEN CAST(l.line_amount AS DECIMAL(38, 6)) END), 0)
            AS DOUBLE PRECISION),
       CAST(coalesce(sum(CASE WHEN l.is_completed THEN CAST(l.line_amount AS DECIMAL(38, 6)) END), 0)
            AS DOUBLE PRECISION),
       CAST(sum(CASE WHEN l.is_completed THEN CAST(l.line_cost_amount AS DECIMAL(38, 6)) END) AS DOUBLE PRECISION),
       bool_and(l.is_cancelled), bool_or(l.is_returned), max(l.batch_date)
FROM (SELECT *, NOT is_cancelled AND NOT is_returned AS is_completed FROM fct_order_line) AS l
WHERE l.order_id IN (SELECT DISTINCT order_id FROM touched_order_line)
GROUP BY l.order_id;
DROP TABLE touched_order_line
