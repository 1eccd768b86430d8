-- One row per source per batch date: the reconciliation (raw = accepted + quarantined) and the
-- extraction watermark. Replaced, never appended, when a batch is reprocessed.
CREATE TABLE IF NOT EXISTS etl_batch (
    source VARCHAR NOT NULL,
    batch_date DATE NOT NULL,
    load_id VARCHAR NOT NULL,
    run_date DATE NOT NULL,
    source_file VARCHAR,
    raw_rows BIGINT NOT NULL,
    accepted_rows BIGINT NOT NULL,
    quarantined_rows BIGINT NOT NULL,
    PRIMARY KEY (source, batch_date)
)
