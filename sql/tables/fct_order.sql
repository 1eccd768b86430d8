-- One row per order, summed from its lines in fct_order_line; amounts in the base currency.
-- An order is cancelled when all its lines are; net and cost amounts count completed lines only.
-- Unique on order_id by construction (the load rebuilds it from fct_order_line); no primary-key index:
-- on DuckDB, maintaining one made the first load several times slower.
CREATE TABLE IF NOT EXISTS fct_order (
    order_id VARCHAR NOT NULL, -- Order business key from the source system
    customer_id VARCHAR, -- Customer key (dim_customer.customer_id), null on guest orders
    ordered_at TIMESTAMPTZ NOT NULL, -- When the order was placed (earliest line), UTC
    ordered_date DATE NOT NULL, -- UTC calendar date of ordered_at, joins dim_date.date_day
    channel VARCHAR, -- Sales channel, e.g. web, app, store, marketplace
    currency VARCHAR NOT NULL, -- ISO 4217 code of the order currency (amounts here are converted to the base currency)
    line_count INTEGER NOT NULL, -- Order lines, any status
    item_quantity BIGINT NOT NULL, -- Sum of the lines' signed quantities
    gross_amount DOUBLE PRECISION NOT NULL, -- Sum of line_amount over lines with a positive quantity, whatever their status, base currency
    net_amount DOUBLE PRECISION NOT NULL, -- Sum of line_amount over lines neither cancelled nor returned (the completed ones), base currency
    cost_amount DOUBLE PRECISION, -- Sum of line_cost_amount over completed lines (neither cancelled nor returned), base currency; null without costs
    is_cancelled BOOLEAN NOT NULL, -- True when every line is cancelled
    has_return BOOLEAN NOT NULL, -- True when at least one line is returned
    batch_date DATE NOT NULL -- Latest batch date among the order's lines
)
