-- Replaces the touched responses with their latest staged version. Their answers follow: the view
-- fct_survey_answer reads the staged answers of the version kept here. UTC dates as in fct_order_line.
CREATE TEMPORARY TABLE latest_survey_response AS
SELECT response_id, batch_date, source_row_number
FROM (SELECT response_id, batch_date, source_row_number,
             row_number() OVER (PARTITION BY response_id ORDER BY batch_date DESC, source_row_number DESC)
                 AS version_rank
      FROM stg_survey_response
      WHERE response_id IN (SELECT response_id FROM touched_survey_response)) AS ranked
WHERE version_rank = 1;
DELETE FROM fct_survey_response WHERE response_id IN (SELECT response_id FROM touched_survey_response);
INSERT INTO fct_survey_response (response_id, customer_id, customer_match, order_id, responded_at, responded_date,
       per_tangibles_score, per_reliability_score, per_responsiveness_score, per_assurance_score, per_empathy_score,
       exp_tangibles_score, exp_reliability_score, exp_responsiveness_score, exp_assurance_score, exp_empathy_score,
       exp_overall_score, satisfaction_score, recommend_score, comment, batch_date, load_id)
SELECT s.response_id, s.customer_id, s.customer_match, s.order_id, s.responded_at,
       DATE '1970-01-01' + CAST(floor(extract(epoch FROM s.responded_at) / 86400) AS INTEGER), s.per_tangibles_score, s.per_reliability_score,
       s.per_responsiveness_score, s.per_assurance_score, s.per_empathy_score, s.exp_tangibles_score,
       s.exp_reliability_score, s.exp_responsiveness_score, s.exp_assurance_score, s.exp_empathy_score,
       s.exp_overall_score, s.satisfaction_score, s.recommend_score, s.comment, s.batch_date, s.load_id
FROM stg_survey_response AS s
JOIN latest_survey_response AS l
  ON l.response_id = s.response_id AND l.batch_date = s.batch_date AND l.source_row_number = s.source_row_number;
DROP TABLE latest_survey_response;
DROP TABLE touched_survey_response
