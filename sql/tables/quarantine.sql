-- One row per rejected raw row: where it came from, the original text (PII masked) and why.
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR NOT NULL,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row_number BIGINT NOT NULL,
    reason_code VARCHAR NOT NULL,
    reason_detail VARCHAR,
    raw_record VARCHAR NOT NULL
)
