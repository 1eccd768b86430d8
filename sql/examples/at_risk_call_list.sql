-- Question: which valuable customers are slipping away, so that account managers call them first?
-- At risk, on the latest as-of date scored: RFM segment at_risk, cannot_lose, about_to_sleep or
-- need_attention, or lifecycle stage cooling or at_risk, or churn-risk band high or medium. Ranked by CLV,
-- then by all-time spend, since clv_amount is null when the CLV models could not be fitted (clv_status
-- says why). Phone and email are not here: the CRM team looks customer_id up in
-- restricted.customer_pii, which BI roles cannot read. Portable; no parameters.
SELECT c.customer_id,
       c.pyramid_tier,
       c.rfm_segment,
       c.lifecycle_stage,
       c.churn_risk_band,
       c.p_alive,
       c.clv_amount,
       c.clv_status,
       c.monetary_amount,
       c.frequency,
       c.recency_days,
       c.last_order_at,
       c.open_complaints,
       c.rater_gap_index,
       c.country
FROM mart_customer_360 AS c
WHERE c.as_of_date IS NOT NULL
  AND (c.rfm_segment IN ('at_risk', 'cannot_lose', 'about_to_sleep', 'need_attention')
       OR c.lifecycle_stage IN ('cooling', 'at_risk')
       OR c.churn_risk_band IN ('high', 'medium'))
ORDER BY c.clv_amount DESC NULLS LAST, c.monetary_amount DESC, c.customer_id
LIMIT 25
