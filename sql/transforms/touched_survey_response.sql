-- Survey response ids of the run's batch dates, before and after their staging rows are replaced.
CREATE TEMPORARY TABLE IF NOT EXISTS touched_survey_response (response_id VARCHAR);
INSERT INTO touched_survey_response SELECT response_id FROM stg_survey_response WHERE batch_date IN :dates
