-- Run report: customers and share of look-back revenue per pyramid tier on the as-of date, top tier first.
SELECT pyramid_tier, tier_rank, customers, revenue_amount, revenue_share
FROM customer_pyramid_daily
WHERE as_of_date = :as_of
ORDER BY tier_rank
