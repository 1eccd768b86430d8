-- Run report: rows quarantined by this run (batches whose etl_batch.run_date is the as-of date) per source and reason.
SELECT q.source, q.reason_code, CAST(count(*) AS BIGINT) AS quarantined_rows
FROM quarantine AS q
JOIN etl_batch AS b ON b.source = q.source AND b.batch_date = q.batch_date
WHERE b.run_date = :as_of
GROUP BY q.source, q.reason_code
ORDER BY q.source, quarantined_rows DESC, q.reason_code
