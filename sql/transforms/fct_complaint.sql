-- Replaces the touched tickets with their latest staged version.
DELETE FROM fct_complaint WHERE ticket_id IN (SELECT ticket_id FROM touched_complaint); INSERT INTO fct_complaint (ticket_id, customer_id,
       customer_match, order_id, opened_at, opened_date, first_response_at, resolved_at, category,
       severity, channel, status, is_reopened, is_timely_response, is_disputed, company_response,
       description, batch_date, load_id) SELECT ticket_id, customer_id, customer_match, order_id,
       opened_at, CAST(opened_at AT TIME ZONE 'UTC' AS DATE), first_response_at, resolved_at, category,
       severity, channel, status, is_reopened, is_timely_response, is_disputed, company_response,
       description, batch_date, load_id
FROM (SELECT s.*, row_number() OVER (PARTITION BY s.ticket_id
                                     ORDER BY s.batch_date DESC, s.source_row_number DESC) AS version_rank
      FROM stg_complaint AS s
      WHERE s.ticket_id IN (SELECT ticket_id FROM touched_complaint)) AS latest
WHERE version_rank = 1;
DROP TABLE touched_complaint
