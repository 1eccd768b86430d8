-- Type-1 attributes on the versions that predate this load (dim_customer.sql gave its new versions
-- the current ones): the latest customer-master record, or without one, the country of the
-- customer's latest order, from the customer_attributes table dim_customer.sql left. Only versions
-- whose values change are rewritten, as a delete and an insert: on DuckDB an UPDATE of many rows of
-- a table with a primary key, inserted by the same transaction, took a minute at S.
CREATE TEMPORARY TABLE refreshed_customer AS
SELECT d.customer_id, d.valid_from, d.valid_to, d.is_current, d.pyramid_tier, d.rfm_segment, d.lifecycle_stage,
       a.first_seen_date, a.is_in_master, a.email_hash, a.phone_hash, a.is_email_valid, a.is_phone_valid,
       a.country, a.city, a.signed_up_at
FROM dim_customer AS d
JOIN customer_attributes AS a ON a.customer_id = d.customer_id
WHERE d.first_seen_date IS DISTINCT FROM a.first_seen_date
   OR d.is_in_master IS DISTINCT FROM a.is_in_master
   OR d.email_hash IS DISTINCT FROM a.email_hash
   OR d.phone_hash IS DISTINCT FROM a.phone_hash
   OR d.is_email_valid IS DISTINCT FROM a.is_email_valid
   OR d.is_phone_valid IS DISTINCT FROM a.is_phone_valid
   OR d.country IS DISTINCT FROM a.country
   OR d.city IS DISTINCT FROM a.city
   OR d.signed_up_at IS DISTINCT FROM a.signed_up_at;
DELETE FROM dim_customer USING refreshed_customer AS r
WHERE dim_customer.customer_id = r.customer_id AND dim_customer.valid_from = r.valid_from;
INSERT INTO dim_customer (customer_id, valid_from, valid_to, is_current, pyramid_tier, rfm_segment, lifecycle_stage,
                          first_seen_date, is_in_master, email_hash, phone_hash, is_email_valid, is_phone_valid,
                          country, city, signed_up_at)
SELECT customer_id, valid_from, valid_to, is_current, pyramid_tier, rfm_segment, lifecycle_stage,
       first_seen_date, is_in_master, email_hash, phone_hash, is_email_valid, is_phone_valid,
       country, city, signed_up_at
FROM refreshed_customer;
DROP TABLE refreshed_customer;
DROP TABLE customer_attributes
