-- One row per order line: its latest loaded version (stg_order_line keeps them all).
-- Cancellation and return lines keep their signed quantity; customer_id is null on guest orders.
-- Unique on order_id + line_number by construction (the load rebuilds the latest version); no primary-key index:
-- on DuckDB, maintaining one made the first load several times slower.
CREATE TABLE IF NOT EXISTS fct_order_line (
    order_id VARCHAR NOT NULL, -- Order business key from the source system
    line_number INTEGER NOT NULL, -- Line number within the order (order_id + line_number is the business key)
    customer_id VARCHAR, -- Customer key (dim_customer.customer_id), resolved across sources, null on guest orders
    customer_match VARCHAR, -- How customer_id was found: 'customer_id' (the row's own id), 'email' or 'phone' (hash matched the master), null if none
    ordered_at TIMESTAMPTZ NOT NULL, -- When the order was placed, UTC (naive source times read in the source's configured time zone)
    ordered_date DATE NOT NULL, -- UTC calendar date of ordered_at, joins dim_date.date_day
    product_id VARCHAR, -- Product identifier as exported
    category VARCHAR, -- Product category as exported (NFKC-normalised), null when unknown
    quantity INTEGER NOT NULL, -- Units on the line, signed: cancellation and return lines may be negative, as the source books them
    unit_price_amount DOUBLE PRECISION NOT NULL, -- Price per unit in the order currency (column currency), as exported
    unit_cost_amount DOUBLE PRECISION, -- Cost per unit in the order currency, null when the source has no cost
    currency VARCHAR NOT NULL, -- ISO 4217 code of the order currency, upper-cased
    line_amount DOUBLE PRECISION NOT NULL, -- quantity x unit price converted to the base currency (config/fx_rates.csv)
    line_cost_amount DOUBLE PRECISION, -- quantity x unit cost in the base currency, null when the cost is unknown
    channel VARCHAR, -- Sales channel as exported, e.g. web, app, store, marketplace
    status VARCHAR NOT NULL, -- Line status: completed, cancelled or returned (mapped from the export's status values or an id prefix)
    is_cancelled BOOLEAN NOT NULL, -- True when status = 'cancelled'
    is_returned BOOLEAN NOT NULL, -- True when status = 'returned'
    customer_country VARCHAR, -- Customer's country as given on the order, used when the customer master has no country
    batch_date DATE NOT NULL, -- Batch (day of data) of the version kept here: the latest one loaded for this key
    load_id VARCHAR NOT NULL -- Load id of that batch (content digest of the source file, see etl_batch.load_id)
)
