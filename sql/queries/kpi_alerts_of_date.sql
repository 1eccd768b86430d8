-- The committed KPI alerts of one as-of date, for the notifier: critical first.
SELECT as_of_date, metric, threshold_kind, value, threshold, bound, severity, message,
       trailing_mean, trailing_sd, trailing_days, window_days, sd_multiplier
FROM kpi_alert
WHERE as_of_date = :as_of
ORDER BY CASE severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, metric, threshold_kind, bound
