-- One row per survey response per answered item per batch date, as staged: the raw answer and its
-- score on the measure's common scale; fct_survey_answer holds the latest response version's answers.
CREATE TABLE IF NOT EXISTS stg_survey_answer (
    response_id VARCHAR NOT NULL, -- Survey response key (fct_survey_response.response_id)
    customer_id VARCHAR, -- Customer key of the response, null for anonymous responses
    responded_at TIMESTAMPTZ NOT NULL, -- When the survey was answered, UTC
    item VARCHAR NOT NULL, -- Survey item (question column) as named in the export, e.g. per_reliability_3
    measure VARCHAR NOT NULL, -- Measure the item belongs to: per_<dimension>, exp_<dimension>, exp_overall, satisfaction or recommend
    raw_value DOUBLE PRECISION NOT NULL, -- Answer as given, on the item's own scale (e.g. 1-10)
    score DOUBLE PRECISION NOT NULL, -- Answer rescaled linearly to the measure's common scale: 1-7, recommend 0-10
    batch_date DATE NOT NULL, -- Batch (day of data) this version was loaded in: the export's file date, or the rows' UTC event date
    load_id VARCHAR NOT NULL, -- Load id of the batch: content digest of the source file, plus -YYYYMMDD when one export was cut into day batches
    source_file VARCHAR NOT NULL, -- Name of the export file (or the database source's label) the row was read from
    source_row_number BIGINT NOT NULL -- 1-based data row number within source_file (header not counted)
)
