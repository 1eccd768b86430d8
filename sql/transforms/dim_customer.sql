-- Rebuilds dim_customer's history from the as-of date on, after customer_score_daily has that date:
-- versions starting on or after it are removed, the version they closed is reopened, and the changes
-- of tier, segment or stage over the scores from that date on become new versions. A backfill of an
-- earlier date therefore replays the later dates already loaded, and a re-run is idempotent.
-- customer_attributes: every customer the warehouse has seen, from the day it first saw them, with
-- the type-1 attributes new versions are inserted with (the latest customer-master record, or without
-- one, the country of the customer's latest order). dim_customer_attributes.sql refreshes the older
-- versions from it, then drops it.
CREATE TEMPORARY TABLE customer_attributes AS
SELECT coalesce(m.customer_id, o.customer_id) AS customer_id,
       least(m.first_seen_date, o.first_seen_date) AS first_seen_date,
       m.customer_id IS NOT NULL AS is_in_master,
       m.email_hash, m.phone_hash, m.is_email_valid, m.is_phone_valid,
       coalesce(m.country, o.country) AS country, m.city, m.signed_up_at
FROM (SELECT * FROM (
          SELECT customer_id, email_hash, phone_hash, is_email_valid, is_phone_valid, country, city, signed_up_at,
                 min(batch_date) OVER (PARTITION BY customer_id) AS first_seen_date,
                 row_number() OVER (PARTITION BY customer_id ORDER BY batch_date DESC, source_row_number DESC)
                     AS version_rank
          FROM stg_customer) AS ranked
      WHERE version_rank = 1) AS m
FULL JOIN (SELECT * FROM (
               SELECT customer_id, customer_country AS country,
                      min(batch_date) OVER (PARTITION BY customer_id) AS first_seen_date,
                      row_number() OVER (PARTITION BY customer_id
                                         ORDER BY ordered_at DESC, batch_date DESC, source_row_number DESC)
                          AS version_rank
               FROM stg_order_line
               WHERE customer_id IS NOT NULL) AS ranked
           WHERE version_rank = 1) AS o
  ON o.customer_id = m.customer_id;
DELETE FROM dim_customer WHERE valid_from >= :as_of;
UPDATE dim_customer SET valid_to = NULL, is_current = TRUE WHERE valid_to >= :as_of;
INSERT INTO dim_customer (customer_id, valid_from, valid_to, is_current, pyramid_tier, rfm_segment, lifecycle_stage,
                          first_seen_date, is_in_master, email_hash, phone_hash, is_email_valid, is_phone_valid,
                          country, city, signed_up_at)
WITH history AS (
    -- The open versions, customers with no version yet (unscored until their first score), and the scores.
    SELECT customer_id, valid_from AS day, pyramid_tier, rfm_segment, lifecycle_stage, TRUE AS is_open, 0 AS priority
    FROM dim_customer WHERE valid_to IS NULL
    UNION ALL
    SELECT k.customer_id, k.first_seen_date, NULL, NULL, NULL, FALSE, 2
    FROM customer_attributes AS k WHERE NOT EXISTS (SELECT 1 FROM dim_customer AS d WHERE d.customer_id = k.customer_id)
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
       coalesce(k.first_seen_date, c.day), coalesce(k.is_in_master, FALSE), k.email_hash, k.phone_hash,
       k.is_email_valid, k.is_phone_valid, k.country, k.city, k.signed_up_at
FROM changes AS c LEFT JOIN customer_attributes AS k ON k.customer_id = c.customer_id
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
