-- Run report: every company KPI row up to the as-of date, oldest first (the trend charts pick their columns).
SELECT *
FROM kpi_daily
WHERE as_of_date <= :as_of
ORDER BY as_of_date
