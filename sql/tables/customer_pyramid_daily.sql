-- One row per pyramid tier per as-of date: customers and their share of look-back revenue.
CREATE TABLE IF NOT EXISTS customer_pyramid_daily (
    as_of_date DATE NOT NULL, -- Date the scores are for: events up to the end of this day (UTC) count, nothing later
    pyramid_tier VARCHAR NOT NULL, -- vip, key, ordinary, small or inactive: every tier has a row, with 0 customers when empty
    tier_rank SMALLINT NOT NULL, -- Sort order of the tier: 1 = vip, 2 = key, 3 = ordinary, 4 = small, 5 = inactive
    customers BIGINT NOT NULL, -- Scored customers in the tier on the as-of date
    revenue_amount DOUBLE PRECISION NOT NULL, -- Their net spend in the look-back window ending on the as-of date (default 365 days), base currency
    revenue_share DOUBLE PRECISION NOT NULL, -- Share 0-1 of the window spend of all scored customers
    PRIMARY KEY (as_of_date, pyramid_tier)
)
