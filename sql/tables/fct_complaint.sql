-- One row per complaint ticket (latest version in its batch); customer_id is null when the ticket
-- system does not know the customer.
CREATE TABLE IF NOT EXISTS fct_complaint (
    ticket_id VARCHAR NOT NULL,
    customer_id VARCHAR,
    customer_match VARCHAR,
    order_id VARCHAR,
    opened_at TIMESTAMPTZ NOT NULL,
    first_response_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    category VARCHAR NOT NULL,
    severity VARCHAR,
    channel VARCHAR,
    status VARCHAR,
    is_reopened BOOLEAN,
    is_timely_response BOOLEAN,
    is_disputed BOOLEAN,
    company_response VARCHAR,
    description VARCHAR,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row_number BIGINT NOT NULL
)
