-- One row per customer per change of pyramid tier: the tier before and after and the date it took
-- effect, from dim_customer's history ("who moved from key to VIP this month" filters this view).
CREATE OR REPLACE VIEW mart_tier_movement AS
SELECT
       customer_id, -- Customer key
       moved_on_date, -- Date the new tier took effect (valid_from of the dim_customer version)
       CAST(date_trunc('month', moved_on_date) AS DATE) AS moved_in_month, -- First day of the month of moved_on_date
       from_tier, -- Tier before the change, null when the customer entered the pyramid (first scored)
       to_tier, -- Tier from moved_on_date on: vip, key, ordinary, small or inactive
       CASE WHEN from_tier IS NULL THEN 'entered'
            WHEN to_rank < from_rank THEN 'up'
            ELSE 'down' END AS direction -- 'entered' (first tier), 'up' (towards vip), 'down' (towards small, then inactive)
FROM (
    SELECT customer_id,
           valid_from AS moved_on_date,
           lag(pyramid_tier) OVER w AS from_tier,
           pyramid_tier AS to_tier,
           CASE lag(pyramid_tier) OVER w WHEN 'vip' THEN 1 WHEN 'key' THEN 2 WHEN 'ordinary' THEN 3 WHEN 'small' THEN 4 WHEN 'inactive' THEN 5 END
               AS from_rank,
           CASE pyramid_tier WHEN 'vip' THEN 1 WHEN 'key' THEN 2 WHEN 'ordinary' THEN 3 WHEN 'small' THEN 4 WHEN 'inactive' THEN 5 END AS to_rank
    FROM dim_customer
    WHERE pyramid_tier IS NOT NULL
    WINDOW w AS (PARTITION BY customer_id ORDER BY valid_from)
) AS versions
WHERE from_tier IS NULL OR from_tier <> to_tier
