-- One row per expectation per source per run: the Great Expectations checkpoint outcome.
-- run_id names the checkpoint run (and its Data Docs page) after the source and the data interval.
CREATE TABLE IF NOT EXISTS dq_validation_result (
    run_date DATE NOT NULL,
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    expectation VARCHAR NOT NULL,
    column_name VARCHAR,
    is_success BOOLEAN NOT NULL,
    unexpected_count BIGINT,
    element_count BIGINT
)
