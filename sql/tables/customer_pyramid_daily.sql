-- One row per pyramid tier per as-of date: customers and their share of look-back revenue.
CREATE TABLE IF NOT EXISTS customer_pyramid_daily (
    as_of_date DATE NOT NULL,
    pyramid_tier VARCHAR NOT NULL,
    tier_rank SMALLINT NOT NULL,
    customers BIGINT NOT NULL,
    revenue_amount DOUBLE PRECISION NOT NULL,
    revenue_share DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (as_of_date, pyramid_tier)
)
