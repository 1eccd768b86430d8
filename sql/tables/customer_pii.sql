-- One row per customer: the only table holding names, email and phone in clear. Restricted:
-- BI roles get no grant on it; every other table carries salted hashes instead.
CREATE SCHEMA IF NOT EXISTS restricted;
CREATE TABLE IF NOT EXISTS restricted.customer_pii (
    customer_id VARCHAR NOT NULL PRIMARY KEY, -- Customer key (dim_customer.customer_id)
    full_name VARCHAR, -- Full name in clear (NFKC-normalised), from the latest customer-master record
    email VARCHAR, -- Email address in clear, lower-cased, null when missing or not a plausible address
    phone VARCHAR, -- Phone number in clear, E.164 format, null when missing or not a valid number
    batch_date DATE NOT NULL -- Batch date of the customer-master record these values come from
)
