-- Per source: batches, raw rows and where they went (raw = accepted + quarantined).
SELECT source,
       count(*) AS batches,
       sum(raw_rows) AS raw_rows,
       sum(accepted_rows) AS accepted_rows,
       sum(quarantined_rows) AS quarantined_rows
FROM etl_batch
GROUP BY source
ORDER BY source
