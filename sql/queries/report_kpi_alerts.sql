-- Run report: broken KPI thresholds up to the as-of date (kpi_alert), oldest first.
SELECT as_of_date, metric, threshold_kind, value, threshold, bound, severity, message
FROM kpi_alert
WHERE as_of_date <= :as_of
ORDER BY as_of_date, metric, threshold_kind, bound
