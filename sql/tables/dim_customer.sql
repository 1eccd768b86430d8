-- One row per customer (latest version): from the customer master when one is configured, else from
-- the customer ids seen in orders. Attributes are safe for BI; PII appears only as salted hashes.
CREATE TABLE IF NOT EXISTS dim_customer (
    customer_id VARCHAR NOT NULL PRIMARY KEY,
    email_hash VARCHAR,
    phone_hash VARCHAR,
    is_email_valid BOOLEAN,
    is_phone_valid BOOLEAN,
    country VARCHAR,
    city VARCHAR,
    signed_up_at TIMESTAMPTZ,
    is_in_master BOOLEAN NOT NULL,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL
)
