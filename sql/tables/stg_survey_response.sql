-- One row per survey response per batch date, as staged: every loaded version with its lineage.
-- Each measure is the mean answer on the common scale; fct_survey_response holds the latest version.
CREATE TABLE IF NOT EXISTS stg_survey_response (
    response_id VARCHAR NOT NULL, -- Survey response business key from the survey tool
    customer_id VARCHAR, -- Customer key (dim_customer.customer_id), resolved across sources, null for anonymous responses
    customer_match VARCHAR, -- How customer_id was found: 'customer_id' (the row's own id), 'email' or 'phone' (hash matched the master), null if none
    order_id VARCHAR, -- Order the survey is about, as given by the survey tool, null when none
    responded_at TIMESTAMPTZ NOT NULL, -- When the survey was answered, UTC
    per_tangibles_score DOUBLE PRECISION, -- Mean perceived tangibles (RATER) over the response's items, rescaled to 1-7, null if not asked
    per_reliability_score DOUBLE PRECISION, -- Mean perceived reliability (RATER) over the response's items, rescaled to 1-7, null if not asked
    per_responsiveness_score DOUBLE PRECISION, -- Mean perceived responsiveness (RATER) over the response's items, rescaled to 1-7, null if not asked
    per_assurance_score DOUBLE PRECISION, -- Mean perceived assurance (RATER) over the response's items, rescaled to 1-7, null if not asked
    per_empathy_score DOUBLE PRECISION, -- Mean perceived empathy (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_tangibles_score DOUBLE PRECISION, -- Mean expected tangibles (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_reliability_score DOUBLE PRECISION, -- Mean expected reliability (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_responsiveness_score DOUBLE PRECISION, -- Mean expected responsiveness (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_assurance_score DOUBLE PRECISION, -- Mean expected assurance (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_empathy_score DOUBLE PRECISION, -- Mean expected empathy (RATER) over the response's items, rescaled to 1-7, null if not asked
    exp_overall_score DOUBLE PRECISION, -- Mean overall-expectation answer, 1-7: stands in for every dimension without its own expectation
    satisfaction_score DOUBLE PRECISION, -- Mean satisfaction answer, 1-7 (CSAT counts 6 and above)
    recommend_score DOUBLE PRECISION, -- Mean likelihood-to-recommend answer, 0-10 (NPS: 9-10 promoter, 0-6 detractor)
    comment VARCHAR, -- Free-text comment of the respondent (at most 32,000 characters)
    batch_date DATE NOT NULL, -- Batch (day of data) this version was loaded in: the export's file date, or the rows' UTC event date
    load_id VARCHAR NOT NULL, -- Load id of the batch: content digest of the source file, plus -YYYYMMDD when one export was cut into day batches
    source_file VARCHAR NOT NULL, -- Name of the export file (or the database source's label) the row was read from
    source_row_number BIGINT NOT NULL -- 1-based data row number within source_file (header not counted)
)
