-- One row per as-of date: the headline KPIs with their trailing 28-day means and the number of KPI
-- alerts raised that day, for trend charts.
CREATE OR REPLACE VIEW mart_kpi_trend AS
SELECT k.as_of_date, -- As-of date of the kpi_daily row
       k.revenue_amount, -- Revenue of completed purchases, all time to the as-of date (cumulative), base currency
       k.completed_orders, -- Distinct completed orders, all time to the as-of date (cumulative)
       k.customers, -- Customers with a completed order by the as-of date
       k.repeat_purchase_rate, -- Share 0-1 of customers with two or more completed orders
       k.retention_rate, -- Share 0-1 of the previous 90 days' buyers who bought again in the last 90 days
       k.nps, -- Net Promoter Score, -100 to 100
       k.csat, -- Share 0-1 of satisfaction answers in the top two boxes
       k.rater_gap_index, -- Weighted SERVQUAL gap index, -6 to 6, negative = below expectation
       k.sla_breach_share, -- Share 0-1 of decided complaint tickets that broke the resolution SLA
       k.revenue_share_vip, -- Share 0-1 of the pyramid look-back window revenue spent by vip customers
       k.clv_total_amount, -- Sum of customer CLVs, base currency, null when none could be computed
       avg(k.repeat_purchase_rate) OVER w28 AS repeat_purchase_rate_28d_mean, -- Mean of repeat_purchase_rate over the loaded as-of dates of the 28 days ending on this one
       avg(k.retention_rate) OVER w28 AS retention_rate_28d_mean, -- Mean of retention_rate over the loaded as-of dates of the 28 days ending on this one
       avg(k.nps) OVER w28 AS nps_28d_mean, -- Mean of nps over the loaded as-of dates of the 28 days ending on this one
       avg(k.sla_breach_share) OVER w28 AS sla_breach_share_28d_mean, -- Mean of sla_breach_share over the loaded as-of dates of the 28 days ending on this one
       coalesce(a.alerts, 0) AS alerts -- KPI alerts raised for this as-of date (kpi_alert rows, 0 = none)
FROM kpi_daily AS k
LEFT JOIN (SELECT as_of_date, count(*) AS alerts FROM kpi_alert GROUP BY as_of_date) AS a
  ON a.as_of_date = k.as_of_date
WINDOW w28 AS (ORDER BY k.as_of_date RANGE BETWEEN INTERVAL '27 days' PRECEDING AND CURRENT ROW)
