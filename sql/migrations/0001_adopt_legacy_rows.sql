-- Revision 0001 on a warehouse made before migrations: the old dim_customer held the latest
-- customer-master record per customer (is_in_master), which becomes that batch's stg_customer row;
-- the old customer_pii moves to the restricted schema unchanged.
INSERT INTO stg_customer (customer_id, email_hash, phone_hash, is_email_valid, is_phone_valid, country, city,
                          signed_up_at, batch_date, load_id, source_file, source_row_number)
SELECT customer_id, email_hash, phone_hash, is_email_valid, is_phone_valid, country, city, signed_up_at,
       batch_date, load_id, 'legacy dim_customer', row_number() OVER (ORDER BY customer_id)
FROM legacy_dim_customer
WHERE is_in_master;
INSERT INTO restricted.customer_pii (customer_id, full_name, email, phone, batch_date)
SELECT customer_id, full_name, email, phone, batch_date FROM legacy_customer_pii
