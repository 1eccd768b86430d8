-- One row per broken KPI threshold per as-of date (thresholds in config/scoring.yml; every check, broken or not, is in kpi_threshold_check).
CREATE TABLE IF NOT EXISTS kpi_alert (
    as_of_date DATE NOT NULL, -- As-of date of the kpi_daily row checked
    metric VARCHAR NOT NULL, -- kpi_daily column that broke its threshold, e.g. sla_breach_share
    threshold_kind VARCHAR NOT NULL, -- 'fixed' (configured min/max) or 'dynamic' (trailing mean -/+ k standard deviations)
    value DOUBLE PRECISION NOT NULL, -- Its value on the as-of date
    threshold DOUBLE PRECISION NOT NULL, -- The bound it broke: the configured min/max, or trailing_mean -/+ sd_multiplier x trailing_sd
    bound VARCHAR NOT NULL, -- 'min' (value below the lower bound) or 'max' (value above the upper bound)
    severity VARCHAR NOT NULL, -- Configured severity: info, warning or critical
    message VARCHAR NOT NULL, -- Readable text, e.g. 'sla_breach_share = 0.2 is above the maximum 0.1'
    trailing_mean DOUBLE PRECISION, -- Dynamic: mean of the metric over the days of the window before the as-of date that have a value; null for fixed
    trailing_sd DOUBLE PRECISION, -- Dynamic: sample standard deviation (n - 1) over those days; null for fixed
    trailing_days BIGINT, -- Dynamic: how many days of the window had a value (at least the configured min_history_days); null for fixed
    window_days INTEGER, -- Dynamic: the configured window, days before the as-of date (default 28); null for fixed
    sd_multiplier DOUBLE PRECISION, -- Dynamic: the configured k of mean -/+ k x sd; null for fixed
    PRIMARY KEY (as_of_date, metric, threshold_kind, bound)
)
