-- Run report: customers and mean spend per recency x frequency score cell (quintiles 1-5) on the as-of date.
SELECT r_score,
       f_score,
       CAST(count(*) AS BIGINT) AS customers,
       CAST(avg(monetary_amount) AS DOUBLE PRECISION) AS mean_monetary
FROM customer_score_daily
WHERE as_of_date = :as_of
GROUP BY r_score, f_score
ORDER BY r_score, f_score
