-- Question: where does service fall short of what customers expect, and is it getting better?
-- One row per as-of date and RATER dimension (reliability, assurance, tangibles, empathy, responsiveness):
-- the mean perception and expectation (1-7) over all survey responses up to that date, and the SERVQUAL
-- gap perception - expectation (negative = below expectation). rater_gap_index is the weighted index of
-- the five gaps that date. Chart gap by as_of_date per dimension. Portable; no parameters.
SELECT as_of_date, rater_order, dimension, perception, expectation, gap, rater_gap_index, survey_responses
FROM (
    SELECT as_of_date, 1 AS rater_order, 'reliability' AS dimension, perception_reliability AS perception,
           expectation_reliability AS expectation, gap_reliability AS gap, rater_gap_index, survey_responses
    FROM kpi_daily
    UNION ALL
    SELECT as_of_date, 2, 'assurance', perception_assurance, expectation_assurance, gap_assurance,
           rater_gap_index, survey_responses
    FROM kpi_daily
    UNION ALL
    SELECT as_of_date, 3, 'tangibles', perception_tangibles, expectation_tangibles, gap_tangibles,
           rater_gap_index, survey_responses
    FROM kpi_daily
    UNION ALL
    SELECT as_of_date, 4, 'empathy', perception_empathy, expectation_empathy, gap_empathy,
           rater_gap_index, survey_responses
    FROM kpi_daily
    UNION ALL
    SELECT as_of_date, 5, 'responsiveness', perception_responsiveness, expectation_responsiveness,
           gap_responsiveness, rater_gap_index, survey_responses
    FROM kpi_daily
) AS by_dimension
WHERE survey_responses > 0
ORDER BY as_of_date, rater_order
