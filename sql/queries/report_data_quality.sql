-- Run report: per source, the batches this run loaded (etl_batch.run_date = the as-of date) and where
-- their raw rows went (raw = accepted + quarantined), next to the totals of everything loaded so far.
SELECT source,
       CAST(sum(CASE WHEN run_date = :as_of THEN 1 ELSE 0 END) AS BIGINT) AS run_batches,
       CAST(sum(CASE WHEN run_date = :as_of THEN raw_rows ELSE 0 END) AS BIGINT) AS run_raw_rows,
       CAST(sum(CASE WHEN run_date = :as_of THEN accepted_rows ELSE 0 END) AS BIGINT) AS run_accepted_rows,
       CAST(sum(CASE WHEN run_date = :as_of THEN quarantined_rows ELSE 0 END) AS BIGINT) AS run_quarantined_rows,
       CAST(count(*) AS BIGINT) AS total_batches,
       CAST(sum(accepted_rows) AS BIGINT) AS total_accepted_rows,
       CAST(sum(quarantined_rows) AS BIGINT) AS total_quarantined_rows
FROM etl_batch
WHERE run_date <= :as_of
GROUP BY source
ORDER BY source
