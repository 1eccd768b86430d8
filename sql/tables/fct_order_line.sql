-- One row per order line (latest version in its batch), amounts also in the base currency.
-- Cancellation and return lines keep their signed quantity; customer_id is null on guest orders.
CREATE TABLE IF NOT EXISTS fct_order_line (
    order_id VARCHAR NOT NULL,
    line_number INTEGER NOT NULL,
    customer_id VARCHAR,
    customer_match VARCHAR,
    ordered_at TIMESTAMPTZ NOT NULL,
    product_id VARCHAR,
    category VARCHAR,
    quantity INTEGER NOT NULL,
    unit_price_amount DOUBLE PRECISION NOT NULL,
    unit_cost_amount DOUBLE PRECISION,
    currency VARCHAR NOT NULL,
    line_amount DOUBLE PRECISION NOT NULL,
    line_cost_amount DOUBLE PRECISION,
    channel VARCHAR,
    status VARCHAR NOT NULL,
    is_cancelled BOOLEAN NOT NULL,
    is_returned BOOLEAN NOT NULL,
    customer_country VARCHAR,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    source_file VARCHAR NOT NULL,
    source_row_number BIGINT NOT NULL
)
