-- Rebuilds dim_customer's history from the as-of date on, after customer_score_daily has that date:
-- versions starting on or after it are removed, the version they closed is reopened, and the changes
-- of tier, segment or stage over the scores from that date on become new versions. A backfill of an
-- earlier date therefore replays the later dates already loaded, and a re-run is idempotent.
DELETE FROM dim_customer WHERE valid_from >= :as_of;
UPDATE dim_customer SET valid_to = NULL, is_current = TRUE WHERE valid_to >= :as_of;
INSERT INTO dim_customer (customer_id, valid_from, valid_to, is_current, pyramid_tier, rfm_segment, lifecycle_stage,
                          first_seen_date, is_in_master)
WITH known AS (
    -- Every customer the warehouse has seen, from the day it first saw them.
    SELECT customer_id, min(batch_date) AS first_seen_date
    FROM (SELECT customer_id, batch_date FROM stg_customer
          UNION ALL
          SELECT customer_id, batch_date FROM stg_order_line WHERE customer_id IS NOT NULL) AS seen
    GROUP BY customer_id
),
history AS (
    -- The open versions, customers with no version yet (unscored until their first score), and the scores.
    SELECT customer_id, valid_from AS day, pyramid_tier, rfm_segment, lifecycle_stage, TRUE AS is_open, 0 AS priority
    FROM dim_customer WHERE valid_to IS NULL
    UNION ALL
    SELECT k.customer_id, k.first_seen_date, NULL, NULL, NULL, FALSE, 2
    FROM known AS k WHERE NOT EXISTS (SELECT 1 FROM dim_customer AS d WHERE d.customer_id = k.customer_id)
    UNION ALL
    SELECT customer_id, as_of_date, pyramid_tier, rfm_segment, lifecycle_stage, FALSE, 1
    FROM customer_score_daily WHERE as_of_date >= :as_of
),
one_per_day AS (
    SELECT * FROM (SELECT h.*, row_number() OVER (PARTITION BY customer_id, day ORDER BY priority) AS day_rank
                   FROM history AS h) AS ranked
    WHERE day_rank = 1
),
changes AS (
    SELECT *,
           row_number() OVER w AS seq,
           lag(pyramid_tier) OVER w AS previous_tier,
           lag(rfm_segment) OVER w AS previous_segment,
           lag(lifecycle_stage) OVER w AS previous_stage
    FROM one_per_day
    WINDOW w AS (PARTITION BY customer_id ORDER BY day)
)
SELECT c.customer_id, c.day, NULL, TRUE, c.pyramid_tier, c.rfm_segment, c.lifecycle_stage,
       coalesce(k.first_seen_date, c.day), FALSE
FROM changes AS c LEFT JOIN known AS k ON k.customer_id = c.customer_id
WHERE NOT c.is_open
  AND (c.seq = 1
       OR c.pyramid_tier IS DISTINCT FROM c.previous_tier
       OR c.rfm_segment IS DISTINCT FROM c.previous_segment
       OR c.lifecycle_stage IS DISTINCT FROM c.previous_stage);
UPDATE dim_customer SET valid_to = n.next_valid_from, is_current = FALSE
FROM (SELECT customer_id, valid_from,
             lead(valid_from) OVER (PARTITION BY customer_id ORDER BY valid_from) AS next_valid_from
      FROM dim_customer WHERE valid_to IS NULL) AS n
WHERE dim_customer.customer_id = n.customer_id AND dim_customer.valid_from = n.valid_from
  AND n.next_valid_from IS NOT NULL
