-- One row per run (logical) date whose load committed: written in the load's own transaction, so a date is here exactly when its tables are (crm backfill skips these dates).
CREATE TABLE IF NOT EXISTS etl_run (
    run_date DATE NOT NULL, -- Run (logical) date: the data interval [run_date, run_date + 1) UTC
    loaded_batches BIGINT NOT NULL, -- Source batches (etl_batch rows) this run loaded, over all sources
    scored_customers BIGINT NOT NULL, -- customer_score_daily rows for this as-of date
    PRIMARY KEY (run_date)
)
