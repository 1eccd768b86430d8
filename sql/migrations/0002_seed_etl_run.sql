-- Revision 0002 on a warehouse loaded before etl_run existed: every run date whose batches or KPIs
-- are in the warehouse had committed, so it counts as done (crm backfill skips it).
INSERT INTO etl_run (run_date, loaded_batches, scored_customers)
SELECT d.run_date, coalesce(b.batches, 0), coalesce(s.customers, 0)
FROM (SELECT run_date FROM etl_batch UNION SELECT as_of_date FROM kpi_daily) AS d
LEFT JOIN (SELECT run_date, count(*) AS batches FROM etl_batch GROUP BY run_date) AS b ON b.run_date = d.run_date
LEFT JOIN (SELECT as_of_date, count(*) AS customers FROM customer_score_daily GROUP BY as_of_date) AS s
    ON s.as_of_date = d.run_date
