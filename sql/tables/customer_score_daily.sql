-- One row per customer with a completed order per as-of date: RFM, segments, pyramid, lifecycle, CLV, loyalty, service and complaint scores.
CREATE TABLE IF NOT EXISTS customer_score_daily (
    as_of_date DATE NOT NULL, -- Date the scores are for: events up to the end of this day (UTC) count, nothing later
    customer_id VARCHAR NOT NULL, -- Customer key (dim_customer.customer_id), guests are never scored
    first_order_at TIMESTAMPTZ NOT NULL, -- First completed purchase (order line), UTC
    last_order_at TIMESTAMPTZ NOT NULL, -- Latest completed purchase by the as-of date, UTC
    recency_days INTEGER NOT NULL, -- RFM recency: days from the UTC date of the latest completed purchase to the as-of date
    frequency INTEGER NOT NULL, -- RFM frequency: distinct completed orders by the as-of date
    monetary_amount DOUBLE PRECISION NOT NULL, -- RFM monetary: net revenue of all completed purchase lines by the as-of date, base currency
    r_score SMALLINT NOT NULL, -- Recency quintile 1-5, 5 = most recent (ties share the lower score)
    f_score SMALLINT NOT NULL, -- Frequency quintile 1-5, 5 = most orders (ties share the lower score, so one-order buyers are all 1)
    m_score SMALLINT NOT NULL, -- Monetary quintile 1-5, 5 = highest spend (ties share the lower score)
    rfm_cell VARCHAR NOT NULL, -- The three quintile digits R, F, M, e.g. '545'
    rfm_segment VARCHAR NOT NULL, -- Named segment from R and FM = mean of F and M: champions, loyal, ..., at_risk, cannot_lose, hibernating, lost
    r3_score SMALLINT NOT NULL, -- Recency tercile 1-3, 3 = most recent (same rank rule as the quintiles)
    f3_score SMALLINT NOT NULL, -- Frequency tercile 1-3, 3 = most orders
    m3_score SMALLINT NOT NULL, -- Monetary tercile 1-3, 3 = highest spend
    rfm3_cell VARCHAR NOT NULL, -- The three tercile digits R, F, M, e.g. '323'
    window_spend_amount DOUBLE PRECISION NOT NULL, -- Net spend in the pyramid look-back window ending on the as-of date (pyramid_window_days, default 365), base currency
    pyramid_tier VARCHAR NOT NULL, -- Tier by window spend: vip (top 1 percent of spenders), key (next 4), ordinary (next 15), small (rest), inactive (no spend in it)
    tenure_days INTEGER NOT NULL, -- Days from the UTC date of the first completed purchase to the as-of date
    lifecycle_stage VARCHAR NOT NULL, -- new, reactivated, active, cooling, at_risk or lost: first matching rule on days since purchases (docs/metrics-lifecycle.md)
    reactivated_on DATE, -- Latest purchase day that came more than lost_days (default 365) after the previous one, null if none
    p_alive DOUBLE PRECISION, -- BG/NBD probability 0-1 that the customer is still active (1 for one-time buyers), null unless bgnbd_status = 'ok'
    churn_risk_band VARCHAR, -- Churn risk band of p_alive, by default high (below 0.3), medium (0.3 to below 0.7), low (0.7 and above), null with p_alive
    bgnbd_status VARCHAR NOT NULL, -- 'ok', or why p_alive (and churn_risk_band) is null: 'insufficient_data: <reason>' or 'failed: <reason>'
    expected_purchases DOUBLE PRECISION, -- BG/NBD expected purchases (purchase days) over the CLV horizon, by default the next 52 weeks
    expected_purchases_status VARCHAR NOT NULL, -- 'ok', or why expected_purchases is null: 'insufficient_data: <reason>' or 'failed: <reason>'
    expected_average_value DOUBLE PRECISION, -- Gamma-Gamma expected value of one future purchase (day), base currency
    expected_value_status VARCHAR NOT NULL, -- 'ok', or why expected_average_value is null: 'insufficient_data: <reason>' or 'failed: <reason>'
    clv_amount DOUBLE PRECISION, -- CLV: expected revenue over the horizon (default 52 weeks), discounted (default 10 percent a year), times margin, base currency
    clv_status VARCHAR NOT NULL, -- 'ok', or why clv_amount is null: the expected_purchases_status reason, else the expected_value_status one
    category_breadth INTEGER NOT NULL, -- Distinct product categories bought in completed purchases (cross-buying), lines without a category not counted
    tenure_score SMALLINT NOT NULL, -- Tenure quintile 1-5, 5 = longest-standing customers (input to loyalty_behavioural)
    loyalty_behavioural DOUBLE PRECISION, -- Behavioural loyalty 0-1: weighted mean of (score - 1) / 4 of r_score, f_score and tenure_score
    loyalty_attitudinal DOUBLE PRECISION, -- Attitudinal loyalty 0-1: weighted mean of recommend / 10 and (satisfaction - 1) / 6, null without survey answers
    loyalty_index DOUBLE PRECISION, -- Loyalty index 0-100: 100 x weighted mean of behavioural and attitudinal loyalty (see loyalty_basis)
    loyalty_basis VARCHAR NOT NULL, -- 'behavioural_and_attitudinal', or 'behavioural_only' when the customer has no survey answers
    survey_responses BIGINT NOT NULL, -- Survey responses of the customer by the as-of date (0 = none)
    perception_tangibles DOUBLE PRECISION, -- Mean perceived tangibles (RATER) over the customer's responses, 1-7
    expectation_tangibles DOUBLE PRECISION, -- Mean expected tangibles, 1-7 (the overall expectation when the survey asks none for tangibles)
    gap_tangibles DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for tangibles, -6 to 6 (negative = below expectation)
    perception_reliability DOUBLE PRECISION, -- Mean perceived reliability (RATER) over the customer's responses, 1-7
    expectation_reliability DOUBLE PRECISION, -- Mean expected reliability, 1-7 (the overall expectation when the survey asks none for reliability)
    gap_reliability DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for reliability, -6 to 6 (negative = below expectation)
    perception_responsiveness DOUBLE PRECISION, -- Mean perceived responsiveness (RATER) over the customer's responses, 1-7
    expectation_responsiveness DOUBLE PRECISION, -- Mean expected responsiveness, 1-7 (the overall expectation when the survey asks none for responsiveness)
    gap_responsiveness DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for responsiveness, -6 to 6 (negative = below expectation)
    perception_assurance DOUBLE PRECISION, -- Mean perceived assurance (RATER) over the customer's responses, 1-7
    expectation_assurance DOUBLE PRECISION, -- Mean expected assurance, 1-7 (the overall expectation when the survey asks none for assurance)
    gap_assurance DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for assurance, -6 to 6 (negative = below expectation)
    perception_empathy DOUBLE PRECISION, -- Mean perceived empathy (RATER) over the customer's responses, 1-7
    expectation_empathy DOUBLE PRECISION, -- Mean expected empathy, 1-7 (the overall expectation when the survey asks none for empathy)
    gap_empathy DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for empathy, -6 to 6 (negative = below expectation)
    expectation_source VARCHAR, -- Where the expectations came from: 'dimension', 'overall' (exp_overall_score), 'mixed', null if none
    rater_gap_index DOUBLE PRECISION, -- Weighted SERVQUAL gap index, -6 to 6: the five gaps weighted as in config/scoring.yml, renormalised over those present
    rater_perception_index DOUBLE PRECISION, -- Weighted perception (SERVPERF-style) index, 1-7: the five perceptions with the same weights
    recommend_score DOUBLE PRECISION, -- Mean likelihood-to-recommend answer of the customer, 0-10
    satisfaction_score DOUBLE PRECISION, -- Mean satisfaction answer of the customer, 1-7
    service_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no survey responses' (the service scores are then null)
    orders_placed BIGINT NOT NULL, -- Distinct orders placed by the as-of date, whatever their status (cancelled and returned included)
    complaints BIGINT NOT NULL, -- Complaint tickets opened by the as-of date (0 = none)
    open_complaints BIGINT NOT NULL, -- Of those, tickets still open at the end of the as-of date
    median_first_response_hours DOUBLE PRECISION, -- Median hours from opening to first response, over tickets answered by the as-of date
    median_resolution_hours DOUBLE PRECISION, -- Median hours from opening to resolution, over tickets resolved by the as-of date (open ones left out)
    sla_breach_share DOUBLE PRECISION, -- Share 0-1 of decided tickets that broke the resolution SLA of their severity (open tickets within SLA left out)
    reopen_rate DOUBLE PRECISION, -- Share 0-1 of tickets reopened, among those where is_reopened is known
    complaints_per_1000_orders DOUBLE PRECISION, -- 1000 x complaints / orders_placed, null without orders
    complaint_times_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no complaints' / 'insufficient_data: no answered or resolved complaints' (medians null)
    PRIMARY KEY (as_of_date, customer_id)
)
