-- Run report: the allowed range of each dynamic KPI threshold per day up to the as-of date
-- (kpi_threshold_check; null bounds on days with too little history for a band), oldest first.
SELECT as_of_date, metric, lower_bound, upper_bound
FROM kpi_threshold_check
WHERE as_of_date <= :as_of AND threshold_kind = 'dynamic'
ORDER BY as_of_date, metric
