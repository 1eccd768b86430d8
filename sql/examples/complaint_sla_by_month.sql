-- Question: how often do complaints break their resolution SLA, and how long do they take to resolve,
-- by month opened and severity?
-- Rules as in kpi_daily.sla_breach_share (docs/metrics-complaints.md), at the end of the latest as-of date
-- loaded: a resolved ticket breached when its resolution took longer than the SLA of its severity, an open
-- one when it is already older than that, an open ticket within its SLA is undecided and left out of the
-- share. The SLA hours repeat the defaults of config/scoring.yml (critical 24, high 72, medium 120,
-- low 240, other or none 120): change them here if the config changes. Portable; no parameters.
WITH as_of AS (
    SELECT EXTRACT(EPOCH FROM CAST(max(as_of_date) AS TIMESTAMP)) + 86400 AS end_epoch FROM kpi_daily
),
tickets AS (
    SELECT d.month_start_date,
           coalesce(c.severity, 'unknown') AS severity,
           CASE WHEN c.status IS NULL THEN c.resolved_at IS NULL ELSE c.status = 'open' END AS is_open,
           CASE c.severity WHEN 'critical' THEN 24 WHEN 'high' THEN 72 WHEN 'medium' THEN 120 WHEN 'low' THEN 240
                ELSE 120 END AS sla_hours,
           CAST((EXTRACT(EPOCH FROM c.resolved_at) - EXTRACT(EPOCH FROM c.opened_at)) / 3600 AS DOUBLE PRECISION)
               AS resolution_hours,
           CAST((a.end_epoch - EXTRACT(EPOCH FROM c.opened_at)) / 3600 AS DOUBLE PRECISION) AS age_hours
    FROM fct_complaint AS c
    JOIN dim_date AS d ON d.date_day = c.opened_date
    CROSS JOIN as_of AS a
),
judged AS (
    SELECT t.*,
           CASE WHEN t.resolution_hours IS NOT NULL THEN CASE WHEN t.resolution_hours > t.sla_hours THEN 1 ELSE 0 END
                WHEN t.is_open AND t.age_hours > t.sla_hours THEN 1 END AS breached
    FROM tickets AS t
)
SELECT month_start_date,
       severity,
       count(*) AS complaints,
       count(resolution_hours) AS resolved,
       sum(CASE WHEN is_open THEN 1 ELSE 0 END) AS still_open,
       count(breached) AS decided,
       avg(CAST(breached AS DOUBLE PRECISION)) AS sla_breach_share,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_hours) AS median_resolution_hours
FROM judged
GROUP BY month_start_date, severity
ORDER BY month_start_date, CASE severity WHEN 'critical' THEN 1 WHEN 'high' THEN 2 WHEN 'medium' THEN 3 WHEN 'low' THEN 4
                                         ELSE 5 END
