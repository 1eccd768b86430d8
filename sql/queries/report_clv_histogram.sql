-- Run report: the CLV distribution on the as-of date as 30 equal-width bins from the smallest CLV to the
-- 99th percentile; the top 1% falls into the last bin so that a few whales do not flatten the chart.
-- Only customers whose CLV was scored (clv_status = 'ok').
WITH clv AS (
    SELECT clv_amount
    FROM customer_score_daily
    WHERE as_of_date = :as_of AND clv_status = 'ok' AND clv_amount IS NOT NULL
),
edges AS (
    SELECT CAST(min(clv_amount) AS DOUBLE PRECISION) AS lo,
           CAST(percentile_cont(0.99) WITHIN GROUP (ORDER BY clv_amount) AS DOUBLE PRECISION) AS hi,
           CAST(max(clv_amount) AS DOUBLE PRECISION) AS top,
           CAST(count(*) AS BIGINT) AS scored
    FROM clv
),
binned AS (
    SELECT CASE WHEN e.hi > e.lo
                THEN least(CAST(floor((c.clv_amount - e.lo) / (e.hi - e.lo) * 30) AS INTEGER), 29)
                ELSE 0 END AS bin
    FROM clv AS c CROSS JOIN edges AS e
)
SELECT b.bin,
       e.lo + b.bin * (e.hi - e.lo) / 30 AS bin_start,
       e.lo + (b.bin + 1) * (e.hi - e.lo) / 30 AS bin_end,
       CAST(count(*) AS BIGINT) AS customers,
       e.scored,
       e.hi AS p99,
       e.top AS max_clv
FROM binned AS b CROSS JOIN edges AS e
GROUP BY b.bin, e.lo, e.hi, e.top, e.scored
ORDER BY b.bin
