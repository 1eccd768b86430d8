-- The CRM segment export of one as-of date: one row per scored customer, no contact data.
SELECT customer_id, as_of_date, pyramid_tier, rfm_segment, churn_risk_band, clv_amount
FROM customer_score_daily
WHERE as_of_date = :as_of
