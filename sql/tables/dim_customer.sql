-- One row per customer (latest version): attributes safe for BI, with PII as salted hashes.
CREATE TABLE IF NOT EXISTS dim_customer (
    customer_id VARCHAR NOT NULL PRIMARY KEY,
    email_hash VARCHAR,
    phone_hash VARCHAR,
    is_email_valid BOOLEAN NOT NULL,
    is_phone_valid BOOLEAN NOT NULL,
    country VARCHAR,
    city VARCHAR,
    signed_up_at TIMESTAMPTZ,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL
)
