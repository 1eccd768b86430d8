-- Complaint ticket ids of the run's batch dates, before and after their staging rows are replaced.
CREATE TEMPORARY TABLE IF NOT EXISTS touched_complaint (ticket_id VARCHAR);
INSERT INTO touched_complaint SELECT ticket_id FROM stg_complaint WHERE batch_date IN :dates
