-- One row per broken KPI threshold per as-of date (thresholds in config/scoring.yml).
CREATE TABLE IF NOT EXISTS kpi_alert (
    as_of_date DATE NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    bound VARCHAR NOT NULL,
    severity VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    PRIMARY KEY (as_of_date, metric, bound)
)
