-- Quarantined rows per source and reason, most frequent first.
SELECT source, reason_code, count(*) AS quarantined_rows
FROM quarantine
GROUP BY source, reason_code
ORDER BY source, quarantined_rows DESC, reason_code
