-- Question: who moved into the VIP tier this month, and from which tier?
-- "This month" is the calendar month of the latest as-of date loaded (not today), so the answer does not
-- change with the day the query runs. from_tier = 'key' are the key-to-VIP movers; a null from_tier
-- (direction 'entered') is a customer whose first tier was already VIP. For key to VIP only, add
-- AND m.from_tier = 'key'. current_tier comes from the customer's current dim_customer version.
-- Portable (PostgreSQL and DuckDB); no parameters.
SELECT m.customer_id,
       m.moved_on_date,
       m.from_tier,
       m.to_tier,
       m.direction,
       cur.pyramid_tier AS current_tier,
       s.window_spend_amount,
       s.rfm_segment,
       s.lifecycle_stage
FROM mart_tier_movement AS m
JOIN dim_date AS latest
  ON latest.date_day = (SELECT max(as_of_date) FROM customer_score_daily)
JOIN dim_customer AS cur
  ON cur.customer_id = m.customer_id
 AND cur.is_current
LEFT JOIN customer_score_daily AS s
  ON s.customer_id = m.customer_id
 AND s.as_of_date = latest.date_day
WHERE m.to_tier = 'vip'
  AND m.moved_in_month = latest.month_start_date
ORDER BY m.moved_on_date DESC, s.window_spend_amount DESC, m.customer_id
