-- Run report: complaint tickets opened by the as-of date, as they stood at its end, per severity and
-- SLA outcome. Mirrors pipeline/scoring/complaints.py (tickets_as_of, sla_breached): the latest
-- version of each ticket loaded by the as-of date; a response or resolution after the day's end has
-- not happened yet; open = resolved after the end, or status 'open', or without a status no resolution.
-- Parameters as_of_end (midnight UTC after the as-of date) and sla_critical ... sla_default (resolution
-- SLAs in hours, config/scoring.yml).
WITH latest AS (
    SELECT severity, status, opened_at, resolved_at,
           row_number() OVER (PARTITION BY ticket_id ORDER BY batch_date DESC, source_row_number DESC) AS version
    FROM stg_complaint
    WHERE batch_date <= :as_of
),
tickets AS (
    SELECT coalesce(severity, 'none') AS severity,
           CASE WHEN resolved_at >= :as_of_end THEN TRUE
                WHEN status IS NULL THEN resolved_at IS NULL
                ELSE status = 'open' END AS is_open,
           CASE WHEN resolved_at < :as_of_end
                THEN CAST(extract(epoch FROM (resolved_at - opened_at)) AS DOUBLE PRECISION) / 3600 END AS resolution_hours,
           CAST(extract(epoch FROM (:as_of_end - opened_at)) AS DOUBLE PRECISION) / 3600 AS age_hours,
           CASE severity WHEN 'critical' THEN :sla_critical
                         WHEN 'high' THEN :sla_high
                         WHEN 'medium' THEN :sla_medium
                         WHEN 'low' THEN :sla_low
                         ELSE :sla_default END AS sla_hours
    FROM latest
    WHERE version = 1 AND opened_at < :as_of_end
)
SELECT severity,
       CAST(sla_hours AS DOUBLE PRECISION) AS sla_hours,
       CASE WHEN resolution_hours IS NOT NULL AND resolution_hours > sla_hours THEN 'resolved late'
            WHEN resolution_hours IS NOT NULL THEN 'resolved in time'
            WHEN is_open AND age_hours > sla_hours THEN 'open, past SLA'
            WHEN is_open THEN 'open, within SLA'
            ELSE 'closed, no resolution time' END AS outcome,
       CAST(count(*) AS BIGINT) AS tickets
FROM tickets
GROUP BY 1, 2, 3
ORDER BY 1, 3
