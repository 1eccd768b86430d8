-- One row per order line per batch date, as staged: every loaded version, with its source file and row.
-- Amounts in the order currency and in the base currency; fct_order_line holds the latest version.
CREATE TABLE IF NOT EXISTS stg_order_line (
    order_id VARCHAR NOT NULL, -- Order business key from the source system
    line_number INTEGER NOT NULL, -- Line number within the order (order_id + line_number is the business key)
    customer_id VARCHAR, -- Customer key (dim_customer.customer_id), resolved across sources, null on guest orders
    customer_match VARCHAR, -- How customer_id was found: 'customer_id' (the row's own id), 'email' or 'phone' (hash matched the master), null if none
    ordered_at TIMESTAMPTZ NOT NULL, -- When the order was placed, UTC (naive source times read in the source's configured time zone)
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
    batch_date DATE NOT NULL, -- Batch (day of data) this version was loaded in: the export's file date, or the rows' UTC event date
    load_id VARCHAR NOT NULL, -- Load id of the batch: content digest of the source file, plus -YYYYMMDD when one export was cut into day batches
    source_file VARCHAR NOT NULL, -- Name of the export file (or the database source's label) the row was read from
    source_row_number BIGINT NOT NULL -- 1-based data row number within source_file (header not counted)
)
