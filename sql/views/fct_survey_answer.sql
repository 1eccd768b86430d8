-- One row per survey response per answered item, from the response's latest loaded version: the
-- staged answers of the version fct_survey_response keeps (a response has one version per batch date).
-- A view, not a copy: the answers are the warehouse's largest table, and a copy doubled their load.
CREATE OR REPLACE VIEW fct_survey_answer AS
SELECT a.response_id, -- Survey response key (fct_survey_response.response_id)
       r.customer_id, -- Customer key of the response, null for anonymous responses
       r.responded_at, -- When the survey was answered, UTC
       r.responded_date, -- UTC calendar date of responded_at, joins dim_date.date_day
       a.item, -- Survey item (question column) as named in the export, e.g. per_reliability_3
       a.measure, -- Measure the item belongs to: per_<dimension>, exp_<dimension>, exp_overall, satisfaction or recommend
       a.raw_value, -- Answer as given, on the item's own scale (e.g. 1-10)
       a.score, -- Answer rescaled linearly to the measure's common scale: 1-7, recommend 0-10
       a.batch_date, -- Batch (day of data) of the version kept here: the latest one loaded for this key
       r.load_id -- Load id of that batch (content digest of the source file, see etl_batch.load_id)
FROM stg_survey_answer AS a
JOIN fct_survey_response AS r
  ON r.response_id = a.response_id AND r.batch_date = a.batch_date
