-- Committed kpi_daily rows of the days in [:first, :as_of), oldest first: the trailing history of the dynamic KPI thresholds.
SELECT * FROM kpi_daily WHERE as_of_date >= :first AND as_of_date < :as_of ORDER BY as_of_date
