-- Run report: Great Expectations results of this run per source: expectations evaluated and failed.
SELECT source,
       CAST(count(*) AS BIGINT) AS expectations,
       CAST(sum(CASE WHEN is_success THEN 0 ELSE 1 END) AS BIGINT) AS failed_expectations
FROM dq_validation_result
WHERE run_date = :as_of
GROUP BY source
ORDER BY source
