-- One row per customer: the only table holding names, email and phone in clear. Restricted:
-- BI roles get no grant on it; every other table carries salted hashes instead.
CREATE TABLE IF NOT EXISTS customer_pii (
    customer_id VARCHAR NOT NULL PRIMARY KEY,
    full_name VARCHAR,
    email VARCHAR,
    phone VARCHAR,
    batch_date DATE NOT NULL
)
