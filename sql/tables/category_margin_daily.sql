-- One row per product category per as-of date: revenue, gross margin and contribution over all purchases to date.
CREATE TABLE IF NOT EXISTS category_margin_daily (
    as_of_date DATE NOT NULL,
    category VARCHAR NOT NULL,
    revenue_amount DOUBLE PRECISION NOT NULL,
    costed_revenue_amount DOUBLE PRECISION NOT NULL,
    gross_margin_amount DOUBLE PRECISION,
    gross_margin_rate DOUBLE PRECISION,
    revenue_share DOUBLE PRECISION,
    margin_contribution_share DOUBLE PRECISION,
    cost_coverage DOUBLE PRECISION,
    margin_status VARCHAR NOT NULL,
    PRIMARY KEY (as_of_date, category)
)
