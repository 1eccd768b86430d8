-- One row per rejected raw row: where it came from, the original text (PII masked) and why.
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR NOT NULL, -- Source kind: customers, orders, surveys or complaints
    batch_date DATE NOT NULL, -- Batch (day of data) the row arrived in
    load_id VARCHAR NOT NULL, -- Load id of that batch (see etl_batch.load_id)
    source_file VARCHAR NOT NULL, -- Export file name (or database source label) the row was read from
    source_row_number BIGINT NOT NULL, -- 1-based data row number within source_file (header not counted)
    reason_code VARCHAR NOT NULL, -- Why it was rejected, e.g. parse_error, missing_value, superseded_version (docs/sources.md, Reason codes)
    reason_detail VARCHAR, -- Detail: the failed expectations or the columns that could not be read
    raw_record VARCHAR NOT NULL -- The original row as JSON text, email and phone masked
)
