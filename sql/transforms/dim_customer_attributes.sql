-- Type-1 attributes on every version: the latest customer-master record, or without one, the country
-- of the customer's latest order. Only rows whose values change are written.
UPDATE dim_customer
SET first_seen_date = a.first_seen_date, is_in_master = a.is_in_master, email_hash = a.email_hash,
    phone_hash = a.phone_hash, is_email_valid = a.is_email_valid, is_phone_valid = a.is_phone_valid,
    country = a.country, city = a.city, signed_up_at = a.signed_up_at
FROM (
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
      ON o.customer_id = m.customer_id
) AS a
WHERE dim_customer.customer_id = a.customer_id
  AND (dim_customer.first_seen_date IS DISTINCT FROM a.first_seen_date
       OR dim_customer.is_in_master IS DISTINCT FROM a.is_in_master
       OR dim_customer.email_hash IS DISTINCT FROM a.email_hash
       OR dim_customer.phone_hash IS DISTINCT FROM a.phone_hash
       OR dim_customer.is_email_valid IS DISTINCT FROM a.is_email_valid
       OR dim_customer.is_phone_valid IS DISTINCT FROM a.is_phone_valid
       OR dim_customer.country IS DISTINCT FROM a.country
       OR dim_customer.city IS DISTINCT FROM a.city
       OR dim_customer.signed_up_at IS DISTINCT FROM a.signed_up_at)
