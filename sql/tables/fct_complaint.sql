-- One row per complaint ticket: its latest loaded version; customer_id is null when the ticket
-- system does not know the customer.
CREATE TABLE IF NOT EXISTS fct_complaint (
    ticket_id VARCHAR NOT NULL, -- Complaint ticket business key from the ticket system
    customer_id VARCHAR, -- Customer key (dim_customer.customer_id), resolved across sources, null when the customer is unknown
    customer_match VARCHAR, -- How customer_id was found: 'customer_id' (the row's own id), 'email' or 'phone' (hash matched the master), null if none
    order_id VARCHAR, -- Order the ticket is about, as given by the ticket system (not checked against fct_order)
    opened_at TIMESTAMPTZ NOT NULL, -- When the ticket was opened, UTC
    opened_date DATE NOT NULL, -- UTC calendar date of opened_at, joins dim_date.date_day
    first_response_at TIMESTAMPTZ, -- First response to the customer, UTC, null while unanswered
    resolved_at TIMESTAMPTZ, -- Resolution time, UTC, null while unresolved
    category VARCHAR NOT NULL, -- Complaint category as exported, e.g. delivery_delay, billing, product_quality
    severity VARCHAR, -- Severity, lower-cased (critical, high, medium, low): sets the resolution SLA, unknown or null = default SLA
    channel VARCHAR, -- Channel the complaint came in through, e.g. email, phone, chat
    status VARCHAR, -- Ticket status as exported, lower-cased ('open' = still open), null when the source has none
    is_reopened BOOLEAN, -- True when the ticket was reopened, null when unknown
    is_timely_response BOOLEAN, -- CFPB-style flag: the company responded in time, null when unknown
    is_disputed BOOLEAN, -- CFPB-style flag: the consumer disputed the response, null when unknown
    company_response VARCHAR, -- CFPB-style company response, e.g. 'Closed with explanation'
    description VARCHAR, -- Free-text complaint description (at most 32,000 characters)
    batch_date DATE NOT NULL, -- Batch (day of data) of the version kept here: the latest one loaded for this key
    load_id VARCHAR NOT NULL, -- Load id of that batch (content digest of the source file, see etl_batch.load_id)
    PRIMARY KEY (ticket_id)
)
