-- One row per broken KPI threshold per as-of date (thresholds in config/scoring.yml).
CREATE TABLE IF NOT EXISTS kpi_alert (
    as_of_date DATE NOT NULL, -- As-of date of the kpi_daily row checked
    metric VARCHAR NOT NULL, -- kpi_daily column that broke its threshold, e.g. sla_breach_share
    value DOUBLE PRECISION NOT NULL, -- Its value on the as-of date
    threshold DOUBLE PRECISION NOT NULL, -- The configured bound it broke
    bound VARCHAR NOT NULL, -- 'min' (value below the minimum) or 'max' (value above the maximum)
    severity VARCHAR NOT NULL, -- Configured severity: info, warning or critical
    message VARCHAR NOT NULL, -- Readable text, e.g. 'sla_breach_share = 0.2 is above the maximum 0.1'
    PRIMARY KEY (as_of_date, metric, bound)
)
