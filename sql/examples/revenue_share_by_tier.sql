-- Question: how much of the revenue does each customer-pyramid tier bring, on the latest date scored?
-- Revenue is the customers' net spend in the look-back window (default 365 days) ending on that date,
-- in the base currency. Every tier has a row, empty ones with 0. cumulative_revenue_share adds the tiers
-- from VIP down, e.g. "the top 5 percent of customers (vip + key) bring this share".
-- Portable (PostgreSQL and DuckDB); no parameters.
SELECT p.as_of_date,
       p.tier_rank,
       p.pyramid_tier,
       p.customers,
       CAST(p.customers AS DOUBLE PRECISION) / NULLIF(sum(p.customers) OVER (), 0) AS customer_share,
       p.revenue_amount,
       p.revenue_share,
       sum(p.revenue_share) OVER (ORDER BY p.tier_rank) AS cumulative_revenue_share,
       p.revenue_amount / NULLIF(p.customers, 0) AS revenue_per_customer
FROM customer_pyramid_daily AS p
WHERE p.as_of_date = (SELECT max(as_of_date) FROM customer_pyramid_daily)
ORDER BY p.tier_rank
