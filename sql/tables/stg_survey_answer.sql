-- One row per survey response per answered item per batch date, as staged: the raw answer and its
-- score on the measure's common scale; fct_survey_answer holds the latest response version's answers.
-- Its customer, time and lineage are its response's: the stg_survey_response row of the same
-- response_id and batch_date (a response has one version per batch date), not repeated per answer.
CREATE TABLE IF NOT EXISTS stg_survey_answer (
    response_id VARCHAR NOT NULL, -- Survey response key (stg_survey_response.response_id)
    item VARCHAR NOT NULL, -- Survey item (question column) as named in the export, e.g. per_reliability_3
    measure VARCHAR NOT NULL, -- Measure the item belongs to: per_<dimension>, exp_<dimension>, exp_overall, satisfaction or recommend
    raw_value DOUBLE PRECISION NOT NULL, -- Answer as given, on the item's own scale (e.g. 1-10)
    score DOUBLE PRECISION NOT NULL, -- Answer rescaled linearly to the measure's common scale: 1-7, recommend 0-10
    batch_date DATE NOT NULL -- Batch (day of data) this version was loaded in; with response_id, the key of its stg_survey_response row
)
