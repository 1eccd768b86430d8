-- Revision 0002: alerts raised before dynamic thresholds existed were all on fixed min/max bounds.
INSERT INTO kpi_alert (as_of_date, metric, threshold_kind, value, threshold, bound, severity, message)
SELECT as_of_date, metric, 'fixed', value, threshold, bound, severity, message
FROM legacy_kpi_alert
