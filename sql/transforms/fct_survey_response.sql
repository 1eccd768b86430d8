-- Replaces the touched responses with their latest staged version, and their answers with that
-- version's answers: a re-exported response replaces all its items.
DELETE FROM fct_survey_response WHERE response_id IN (SELECT response_id FROM touched_survey_response); DELETE FROM fct_survey_answer WHERE response_id IN (SELECT response_id FROM touched_survey_response); INSERT INTO fct_survey_response (response_id,
       customer_id, customer_match, order_id, responded_at, responded_date, per_tangibles_score,
       per_reliability_score, per_responsiveness_score, per_assurance_score, per_empathy_score,
       exp_tangibles_score, exp_reliability_score, exp_responsiveness_score, exp_assurance_score,
       exp_empathy_score, exp_overall_score, satisfaction_score, recommend_score, comment, batch_date,
       load_id) SELECT response_id, customer_id, customer_match, order_id, responded_at,
       CAST(responded_at AT TIME ZONE 'UTC' AS DATE), per_tangibles_score, per_reliability_score,
       per_responsiveness_score, per_assurance_score, per_empathy_score, exp_tangibles_score,
       exp_reliability_score, exp_responsiveness_score, exp_assurance_score, exp_empathy_score,
       exp_overall_score, satisfaction_score, recommend_score, comment, batch_date, load_id
FROM (SELECT s.*, row_number() OVER (PARTITION BY s.response_id ORDER BY s.batch_date DESC,
       s.source_row_number DESC) AS version_rank FROM stg_survey_response AS s WHERE s.response_id IN (SELECT response_id FROM touched_survey_response)) AS latest WHERE version_rank = 1; INSERT INTO fct_survey_answer (response_id,
       customer_id, responded_at, responded_date, item, measure, raw_value, score, batch_date,
       load_id) SELECT response_id, customer_id, responded_at,
       CAST(responded_at AT TIME ZONE 'UTC' AS DATE), item, measure, raw_value, score, batch_date,
       load_id
FROM (SELECT s.*, row_number() OVER (PARTITION BY s.response_id, s.item, s.measure
                                     ORDER BY s.source_row_number DESC) AS version_rank
      FROM stg_survey_answer AS s
      JOIN fct_survey_response AS r ON r.response_id = s.response_id AND r.batch_date = s.batch_date
      WHERE s.response_id IN (SELECT response_id FROM touched_survey_response)) AS latest
WHERE version_rank = 1;
DROP TABLE touched_survey_response
