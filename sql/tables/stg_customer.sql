-- One row per customer-master record per batch date, as staged: every version kept for lineage.
-- Email and phone appear only as salted hashes; the clear values live in restricted.customer_pii.
CREATE TABLE IF NOT EXISTS stg_customer (
    customer_id VARCHAR NOT NULL, -- Customer business key from the customer master
    email_hash VARCHAR, -- Salted SHA-256 of the email, lower-cased and validated, null when missing or not a plausible address
    phone_hash VARCHAR, -- Salted SHA-256 of the phone in E.164 format, null when missing or not a valid number
    is_email_valid BOOLEAN, -- True when the record has a plausible email address (false when missing or malformed)
    is_phone_valid BOOLEAN, -- True when the phone parses as a valid number (libphonenumber, the country as default region)
    country VARCHAR, -- Country code as exported, trimmed and upper-cased, e.g. CN
    city VARCHAR, -- City as exported (NFKC-normalised)
    signed_up_at TIMESTAMPTZ, -- When the customer signed up, UTC
    batch_date DATE NOT NULL, -- Batch (day of data) this version was loaded in: the export's file date, or the rows' UTC event date
    load_id VARCHAR NOT NULL, -- Load id of the batch: content digest of the source file, plus -YYYYMMDD when one export was cut into day batches
    source_file VARCHAR NOT NULL, -- Name of the export file (or the database source's label) the row was read from
    source_row_number BIGINT NOT NULL -- 1-based data row number within source_file (header not counted)
)
