-- Customers and revenue share per pyramid tier on the latest as-of date at or before :as_of.
SELECT pyramid_tier, customers, revenue_share
FROM customer_pyramid_daily
WHERE as_of_date = (SELECT max(as_of_date) FROM customer_pyramid_daily WHERE as_of_date <= :as_of)
ORDER BY tier_rank
