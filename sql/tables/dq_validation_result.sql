-- One row per expectation per source per run: the Great Expectations checkpoint outcome.
-- run_id names the checkpoint run (and its Data Docs page) after the source and the data interval.
CREATE TABLE IF NOT EXISTS dq_validation_result (
    run_date DATE NOT NULL, -- Run date of the checkpoint (the day of the run's data interval)
    run_id VARCHAR NOT NULL, -- Checkpoint run name, <source>-<run date>: the same name as in Data Docs
    source VARCHAR NOT NULL, -- Source kind validated: customers, orders, surveys or complaints
    expectation VARCHAR NOT NULL, -- Great Expectations expectation type, e.g. expect_column_values_to_not_be_null
    column_name VARCHAR, -- Column checked (comma-separated for multi-column expectations), null for table-level expectations
    is_success BOOLEAN NOT NULL, -- True when the expectation held for every row
    unexpected_count BIGINT, -- Rows that failed it (they were quarantined), null for table-level expectations
    element_count BIGINT -- Rows checked: the standardized rows of the run's batches
)
