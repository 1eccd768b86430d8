-- One row per current customer: tier, segment and stage with the date they took effect, and value,
-- churn, loyalty, service quality and complaints side by side, from the latest as-of date scored.
CREATE OR REPLACE VIEW mart_customer_360 AS
SELECT d.customer_id, -- Customer key
       d.pyramid_tier, -- Current pyramid tier (vip, key, ordinary, small, inactive), null until the customer is first scored
       d.rfm_segment, -- Current RFM named segment, null until first scored
       d.lifecycle_stage, -- Current lifecycle stage, null until first scored
       d.valid_from AS current_since_date, -- Date the current tier, segment and stage took effect (dim_customer.valid_from of the current version)
       d.first_seen_date, -- First batch date the customer appeared in the customer master or an order
       d.is_in_master, -- The customer has a customer-master record (false: known only from orders)
       d.country, -- Country code from the customer master, else from the latest order
       d.city, -- City from the customer master
       d.email_hash, -- Salted SHA-256 of the email (clear values only in restricted.customer_pii)
       d.phone_hash, -- Salted SHA-256 of the E.164 phone
       s.as_of_date, -- Latest as-of date in customer_score_daily, null when the customer has no score that day (score columns null too)
       s.first_order_at, -- First completed purchase, UTC
       s.last_order_at, -- Latest completed purchase, UTC
       s.recency_days, -- Days since the latest completed purchase
       s.frequency, -- Distinct completed orders
       s.monetary_amount, -- Net revenue of all completed purchases, base currency
       s.rfm_cell, -- R, F and M quintile digits, e.g. '545' (5 = best)
       s.window_spend_amount, -- Net spend in the pyramid look-back window (default 365 days), base currency
       s.tenure_days, -- Days since the first completed purchase
       s.p_alive, -- BG/NBD probability 0-1 that the customer is still active, null when the model could not be fitted or evaluated
       s.churn_risk_band, -- Churn risk band of p_alive, by default high (below 0.3), medium, low (0.7 and above)
       s.expected_purchases, -- Expected purchases over the CLV horizon, by default the next 52 weeks (BG/NBD)
       s.expected_average_value, -- Expected value of one future purchase, base currency (Gamma-Gamma)
       s.clv_amount, -- CLV: discounted expected revenue over the horizon (default 52 weeks), base currency, null unless clv_status = 'ok'
       s.clv_status, -- 'ok', or why clv_amount is null ('insufficient_data: <reason>' or 'failed: <reason>')
       s.category_breadth, -- Distinct product categories bought
       s.loyalty_index, -- Loyalty index 0-100 (behavioural, plus attitudinal when the customer answered surveys)
       s.survey_responses, -- Survey responses of the customer (0 = none)
       s.rater_perception_index, -- Weighted RATER perception index, 1-7
       s.rater_gap_index, -- Weighted SERVQUAL gap index (perception - expectation), -6 to 6, negative = below expectation
       s.recommend_score, -- Mean likelihood-to-recommend answer, 0-10
       s.satisfaction_score, -- Mean satisfaction answer, 1-7
       s.service_status, -- 'ok', or 'insufficient_data: no survey responses'
       s.complaints, -- Complaint tickets opened by the as-of date
       s.open_complaints, -- Of those, tickets still open
       s.median_resolution_hours, -- Median hours to resolve the customer's resolved tickets
       s.sla_breach_share, -- Share 0-1 of decided tickets that broke the resolution SLA
       s.reopen_rate -- Share 0-1 of tickets reopened
FROM dim_customer AS d
LEFT JOIN customer_score_daily AS s
  ON s.customer_id = d.customer_id
 AND s.as_of_date = (SELECT max(as_of_date) FROM customer_score_daily)
WHERE d.is_current
