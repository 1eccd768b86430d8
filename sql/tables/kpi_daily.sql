-- One row per as-of date: company KPIs (orders, revenue, lifecycle, churn, CLV, retention, pyramid shares, margin, service, complaints).
CREATE TABLE IF NOT EXISTS kpi_daily (
    as_of_date DATE NOT NULL, -- Date the scores are for: events up to the end of this day (UTC) count, nothing later
    completed_orders BIGINT, -- Distinct orders with a completed purchase line, all time to the as-of date, guests included (cumulative)
    revenue_amount DOUBLE PRECISION, -- Revenue of completed purchase lines, all time to the as-of date, guests included, base currency (cumulative)
    customers BIGINT, -- Customers with a completed order by the as-of date (the customer_score_daily rows)
    repeat_customers BIGINT, -- Customers with at least two distinct completed orders
    repeat_purchase_rate DOUBLE PRECISION, -- repeat_customers / customers, 0-1
    mean_tenure_days DOUBLE PRECISION, -- Mean tenure_days over the customers
    mean_category_breadth DOUBLE PRECISION, -- Mean category_breadth over the customers
    mean_loyalty_index DOUBLE PRECISION, -- Mean loyalty_index (0-100) over the customers
    customers_new BIGINT, -- Customers in lifecycle stage new
    customers_active BIGINT, -- Customers in lifecycle stage active
    customers_cooling BIGINT, -- Customers in lifecycle stage cooling
    customers_at_risk BIGINT, -- Customers in lifecycle stage at_risk
    customers_lost BIGINT, -- Customers in lifecycle stage lost
    customers_reactivated BIGINT, -- Customers in lifecycle stage reactivated
    customers_churn_high BIGINT, -- Customers in churn band high (one column per churn_band_labels entry of config/scoring.yml)
    customers_churn_medium BIGINT, -- Customers in churn band medium
    customers_churn_low BIGINT, -- Customers in churn band low
    mean_p_alive DOUBLE PRECISION, -- Mean P(alive) over the customers that have one, 0-1
    clv_customers BIGINT, -- Customers with a CLV (clv_amount not null)
    clv_total_amount DOUBLE PRECISION, -- Sum of clv_amount over them, base currency, null when nobody has one
    clv_status VARCHAR NOT NULL, -- 'ok' when every customer has a CLV, else the commonest reason one does not (clv_customers says how many do)
    previous_period_customers BIGINT, -- Customers with a completed purchase in the 90 days (retention_period_days) before the latest 90 days
    retained_customers BIGINT, -- Of those, customers who bought again in the 90 days ending on the as-of date
    retention_rate DOUBLE PRECISION, -- retained_customers / previous_period_customers, 0-1
    retention_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no customers active in the previous period' (retention_rate null)
    revenue_share_vip DOUBLE PRECISION, -- Share 0-1 of the pyramid look-back window revenue (default 365 days) spent by vip customers
    revenue_share_key DOUBLE PRECISION, -- Share 0-1 of look-back window revenue spent by key customers
    revenue_share_ordinary DOUBLE PRECISION, -- Share 0-1 of look-back window revenue spent by ordinary customers
    revenue_share_small DOUBLE PRECISION, -- Share 0-1 of look-back window revenue spent by small customers
    gross_margin_amount DOUBLE PRECISION, -- Revenue minus cost over purchase lines with a known cost, all time to the as-of date, base currency
    gross_margin_rate DOUBLE PRECISION, -- gross_margin_amount / revenue of the lines with a known cost, 0-1
    margin_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no cost data' (margin null)
    survey_responses BIGINT, -- Survey responses by the as-of date, anonymous ones included
    perception_tangibles DOUBLE PRECISION, -- Mean perceived tangibles (RATER) over all responses, 1-7
    expectation_tangibles DOUBLE PRECISION, -- Mean expected tangibles over all responses, 1-7 (the overall expectation when none is asked for tangibles)
    gap_tangibles DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for tangibles, -6 to 6 (negative = below expectation)
    perception_reliability DOUBLE PRECISION, -- Mean perceived reliability (RATER) over all responses, 1-7
    expectation_reliability DOUBLE PRECISION, -- Mean expected reliability over all responses, 1-7 (the overall expectation when none is asked for reliability)
    gap_reliability DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for reliability, -6 to 6 (negative = below expectation)
    perception_responsiveness DOUBLE PRECISION, -- Mean perceived responsiveness (RATER) over all responses, 1-7
    expectation_responsiveness DOUBLE PRECISION, -- Mean expected responsiveness over all responses, 1-7 (the overall expectation when none is asked for responsiveness)
    gap_responsiveness DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for responsiveness, -6 to 6 (negative = below expectation)
    perception_assurance DOUBLE PRECISION, -- Mean perceived assurance (RATER) over all responses, 1-7
    expectation_assurance DOUBLE PRECISION, -- Mean expected assurance over all responses, 1-7 (the overall expectation when none is asked for assurance)
    gap_assurance DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for assurance, -6 to 6 (negative = below expectation)
    perception_empathy DOUBLE PRECISION, -- Mean perceived empathy (RATER) over all responses, 1-7
    expectation_empathy DOUBLE PRECISION, -- Mean expected empathy over all responses, 1-7 (the overall expectation when none is asked for empathy)
    gap_empathy DOUBLE PRECISION, -- Mean SERVQUAL gap perception - expectation for empathy, -6 to 6 (negative = below expectation)
    expectation_source VARCHAR, -- Where the expectations came from: 'dimension', 'overall' (exp_overall_score), 'mixed', null if none
    recommend_score DOUBLE PRECISION, -- Mean likelihood-to-recommend answer over all responses, 0-10
    satisfaction_score DOUBLE PRECISION, -- Mean satisfaction answer over all responses, 1-7
    nps_responses BIGINT, -- Responses with a recommend answer (the NPS base)
    nps DOUBLE PRECISION, -- Net Promoter Score, -100 to 100: 100 x (share of recommend 9-10 minus share 0-6)
    csat_responses BIGINT, -- Responses with a satisfaction answer (the CSAT base)
    csat DOUBLE PRECISION, -- CSAT: share 0-1 of satisfaction answers in the top two boxes (6 or 7 of 1-7)
    rater_gap_index DOUBLE PRECISION, -- Weighted SERVQUAL gap index over all responses, -6 to 6 (weights in config/scoring.yml)
    rater_perception_index DOUBLE PRECISION, -- Weighted perception (SERVPERF-style) index over all responses, 1-7
    service_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no survey responses' (service figures null)
    cronbach_alpha_per_tangibles DOUBLE PRECISION, -- Cronbach's alpha of the perceived-tangibles items, null with under 2 items or 10 complete responses
    cronbach_alpha_per_reliability DOUBLE PRECISION, -- Cronbach's alpha of the perceived-reliability items, null with under 2 items or 10 complete responses
    cronbach_alpha_per_responsiveness DOUBLE PRECISION, -- Cronbach's alpha of the perceived-responsiveness items, null with under 2 items or 10 complete responses
    cronbach_alpha_per_assurance DOUBLE PRECISION, -- Cronbach's alpha of the perceived-assurance items, null with under 2 items or 10 complete responses
    cronbach_alpha_per_empathy DOUBLE PRECISION, -- Cronbach's alpha of the perceived-empathy items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_tangibles DOUBLE PRECISION, -- Cronbach's alpha of the expected-tangibles items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_reliability DOUBLE PRECISION, -- Cronbach's alpha of the expected-reliability items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_responsiveness DOUBLE PRECISION, -- Cronbach's alpha of the expected-responsiveness items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_assurance DOUBLE PRECISION, -- Cronbach's alpha of the expected-assurance items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_empathy DOUBLE PRECISION, -- Cronbach's alpha of the expected-empathy items, null with under 2 items or 10 complete responses
    cronbach_alpha_exp_overall DOUBLE PRECISION, -- Cronbach's alpha of the overall-expectation items, null with under 2 items or 10 complete responses
    complaints BIGINT, -- Complaint tickets opened by the as-of date, anonymous ones included
    open_complaints BIGINT, -- Of those, tickets still open at the end of the as-of date
    median_first_response_hours DOUBLE PRECISION, -- Median hours from opening to first response, over tickets answered by the as-of date
    median_resolution_hours DOUBLE PRECISION, -- Median hours from opening to resolution, over tickets resolved by the as-of date
    sla_breach_share DOUBLE PRECISION, -- Share 0-1 of decided tickets that broke the resolution SLA of their severity (open tickets within SLA left out)
    reopen_rate DOUBLE PRECISION, -- Share 0-1 of tickets reopened, among those where is_reopened is known
    timely_response_share DOUBLE PRECISION, -- Share 0-1 of tickets with a timely response (CFPB flag), among those where it is known
    dispute_share DOUBLE PRECISION, -- Share 0-1 of tickets the consumer disputed (CFPB flag), among those where it is known
    orders_placed BIGINT, -- Distinct orders placed by the as-of date, any status, guests included
    complaints_per_1000_orders DOUBLE PRECISION, -- 1000 x complaints / orders_placed, null without orders
    complaint_times_status VARCHAR NOT NULL, -- 'ok', or 'insufficient_data: no complaints' / 'insufficient_data: no answered or resolved complaints'
    PRIMARY KEY (as_of_date)
)
