-- One row per customer with a completed order per as-of date: RFM (Hughes quintiles) and pyramid tier.
CREATE TABLE IF NOT EXISTS customer_score_daily (
    as_of_date DATE NOT NULL,
    customer_id VARCHAR NOT NULL,
    first_order_at TIMESTAMPTZ NOT NULL,
    last_order_at TIMESTAMPTZ NOT NULL,
    recency_days INTEGER NOT NULL,
    frequency INTEGER NOT NULL,
    monetary_amount DOUBLE PRECISION NOT NULL,
    r_score SMALLINT NOT NULL,
    f_score SMALLINT NOT NULL,
    m_score SMALLINT NOT NULL,
    rfm_cell VARCHAR NOT NULL,
    window_spend_amount DOUBLE PRECISION NOT NULL,
    pyramid_tier VARCHAR NOT NULL,
    PRIMARY KEY (as_of_date, customer_id)
)
