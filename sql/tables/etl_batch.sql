-- One row per source per batch date: the reconciliation (raw = accepted + quarantined) and the
-- extraction watermark. Replaced, never appended, when a batch is reprocessed.
CREATE TABLE IF NOT EXISTS etl_batch (
    source VARCHAR NOT NULL, -- Source kind: customers, orders, surveys or complaints
    batch_date DATE NOT NULL, -- Day of data the batch holds (the export's file date or the rows' UTC event date)
    load_id VARCHAR NOT NULL, -- Load id: content digest of the source file, plus -YYYYMMDD when one export was cut into day batches
    run_date DATE NOT NULL, -- Run (logical) date that loaded the batch: a re-run of that date reprocesses exactly its batches
    source_file VARCHAR, -- Export file name (or database source label) the batch was read from
    raw_rows BIGINT NOT NULL, -- Rows read from the source for this batch
    accepted_rows BIGINT NOT NULL, -- Rows staged into the stg_ table
    quarantined_rows BIGINT NOT NULL, -- Rows rejected into quarantine (raw_rows = accepted_rows + quarantined_rows)
    PRIMARY KEY (source, batch_date)
)
