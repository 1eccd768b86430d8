-- One row per survey response per answered item, from the response's latest loaded version.
-- Unique on response_id + item + measure by construction (the load rebuilds the latest version); no primary-key index:
-- on DuckDB, maintaining one made the first load several times slower.
CREATE TABLE IF NOT EXISTS fct_survey_answer (
    response_id VARCHAR NOT NULL, -- Survey response key (fct_survey_response.response_id)
    customer_id VARCHAR, -- Customer key of the response, null for anonymous responses
    responded_at TIMESTAMPTZ NOT NULL, -- When the survey was answered, UTC
    responded_date DATE NOT NULL, -- UTC calendar date of responded_at, joins dim_date.date_day
    item VARCHAR NOT NULL, -- Survey item (question column) as named in the export, e.g. per_reliability_3
    measure VARCHAR NOT NULL, -- Measure the item belongs to: per_<dimension>, exp_<dimension>, exp_overall, satisfaction or recommend
    raw_value DOUBLE PRECISION NOT NULL, -- Answer as given, on the item's own scale (e.g. 1-10)
    score DOUBLE PRECISION NOT NULL, -- Answer rescaled linearly to the measure's common scale: 1-7, recommend 0-10
    batch_date DATE NOT NULL, -- Batch (day of data) of the version kept here: the latest one loaded for this key
    load_id VARCHAR NOT NULL -- Load id of that batch (content digest of the source file, see etl_batch.load_id)
)
