-- The first and last day dim_date must cover: every event, batch and as-of date in the warehouse.
SELECT min(first_day), max(last_day)
FROM (SELECT min(ordered_date) AS first_day, max(ordered_date) AS last_day FROM fct_order_line
      UNION ALL SELECT min(responded_date), max(responded_date) FROM fct_survey_response
      UNION ALL SELECT min(opened_date), max(opened_date) FROM fct_complaint
      UNION ALL SELECT min(batch_date), max(batch_date) FROM etl_batch
      UNION ALL SELECT min(as_of_date), max(as_of_date) FROM kpi_daily) AS spans
