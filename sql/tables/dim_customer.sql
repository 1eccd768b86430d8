-- One row per customer per version (SCD type 2 on pyramid tier, RFM segment and lifecycle stage):
-- a version is valid for as-of dates in [valid_from, valid_to); the open version has is_current.
-- Master attributes (country, city, hashes) are type 1: every version shows the latest known value.
CREATE TABLE IF NOT EXISTS dim_customer (
    customer_id VARCHAR NOT NULL, -- Customer business key from the source systems (customer master, else the orders)
    valid_from DATE NOT NULL, -- First as-of date this version applies to (for the first, unscored version: the date the customer was first seen)
    valid_to DATE, -- Exclusive end: valid_from of the next version, null for the open version
    is_current BOOLEAN NOT NULL, -- True on the open version (valid_to is null): one per customer
    pyramid_tier VARCHAR, -- Pyramid tier during the version (vip, key, ordinary, small, inactive), null before the first score
    rfm_segment VARCHAR, -- RFM named segment during the version, null before the first score
    lifecycle_stage VARCHAR, -- Lifecycle stage during the version (new, active, cooling, at_risk, lost, reactivated), null before the first score
    first_seen_date DATE NOT NULL, -- Type 1: first batch date the customer appeared in the customer master or in an order
    is_in_master BOOLEAN NOT NULL, -- Type 1: the customer has a record in the customer master (stg_customer), false if known only from orders
    email_hash VARCHAR, -- Type 1: salted SHA-256 of the normalised email (latest master record), null when missing or invalid
    phone_hash VARCHAR, -- Type 1: salted SHA-256 of the E.164 phone (latest master record), null when missing or invalid
    is_email_valid BOOLEAN, -- Type 1: the master record has a plausible email address, null when not in the master
    is_phone_valid BOOLEAN, -- Type 1: the master record has a valid phone number, null when not in the master
    country VARCHAR, -- Type 1: country code from the master, else the customer_country of the latest order
    city VARCHAR, -- Type 1: city from the customer master
    signed_up_at TIMESTAMPTZ, -- Type 1: sign-up time from the customer master, UTC
    PRIMARY KEY (customer_id, valid_from)
)
