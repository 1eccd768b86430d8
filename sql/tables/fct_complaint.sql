-- One row per complaint ticket (latest version in its batch).
CREATE TABLE IF NOT EXISTS fct_complaint (
    ticket_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    order_id VARCHAR,
    opened_at TIMESTAMPTZ NOT NULL,
    first_response_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    category VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    channel VARCHAR,
    is_reopened BOOLEAN,
    description VARCHAR,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row_number BIGINT NOT NULL
)
