-- One row per survey response per answered item: the raw answer and its score on the measure's common scale.
CREATE TABLE IF NOT EXISTS fct_survey_answer (
    response_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    responded_at TIMESTAMPTZ NOT NULL,
    item VARCHAR NOT NULL,
    measure VARCHAR NOT NULL,
    raw_value DOUBLE PRECISION NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row_number BIGINT NOT NULL
)
