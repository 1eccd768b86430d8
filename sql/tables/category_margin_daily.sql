-- One row per product category per as-of date: revenue, gross margin and contribution over all purchases to date.
CREATE TABLE IF NOT EXISTS category_margin_daily (
    as_of_date DATE NOT NULL, -- Date the scores are for: events up to the end of this day (UTC) count, nothing later
    category VARCHAR NOT NULL, -- Product category, 'uncategorised' for lines without one
    revenue_amount DOUBLE PRECISION NOT NULL, -- Revenue of completed purchase lines in the category, all time to the as-of date, guests included, base currency
    costed_revenue_amount DOUBLE PRECISION NOT NULL, -- Part of revenue_amount from lines whose cost is known, base currency
    gross_margin_amount DOUBLE PRECISION, -- Revenue minus cost over the lines with a known cost, base currency, null when the category has no cost data
    gross_margin_rate DOUBLE PRECISION, -- gross_margin_amount / costed_revenue_amount, 0-1 (missing costs are never read as zero)
    revenue_share DOUBLE PRECISION, -- Share 0-1 of the revenue of all categories
    margin_contribution_share DOUBLE PRECISION, -- Share of the company gross margin (gross_margin_amount / sum over categories), null without cost data
    cost_coverage DOUBLE PRECISION, -- costed_revenue_amount / revenue_amount, 0-1: how much of the revenue the margin covers
    margin_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no cost data for the category' (margin figures null)
    PRIMARY KEY (as_of_date, category)
)
