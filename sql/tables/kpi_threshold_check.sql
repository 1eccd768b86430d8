-- One row per configured KPI threshold per as-of date: the bounds in force that day and whether the KPI kept to them, or why it could not be checked.
CREATE TABLE IF NOT EXISTS kpi_threshold_check (
    as_of_date DATE NOT NULL, -- As-of date of the kpi_daily row checked
    metric VARCHAR NOT NULL, -- kpi_daily column the threshold is on, e.g. nps
    threshold_kind VARCHAR NOT NULL, -- 'fixed' (configured min/max) or 'dynamic' (trailing mean -/+ k standard deviations)
    severity VARCHAR NOT NULL, -- Configured severity of a breach: info, warning or critical
    value DOUBLE PRECISION, -- The metric on the as-of date; null when not measured
    lower_bound DOUBLE PRECISION, -- Lowest allowed value that day: min, or trailing_mean - sd_multiplier x trailing_sd; null when none applies
    upper_bound DOUBLE PRECISION, -- Highest allowed value that day: max, or trailing_mean + sd_multiplier x trailing_sd; null when none applies
    trailing_mean DOUBLE PRECISION, -- Dynamic: mean of the metric over the days of the window before the as-of date that have a value
    trailing_sd DOUBLE PRECISION, -- Dynamic: sample standard deviation (n - 1) over those days
    trailing_days BIGINT, -- Dynamic: how many days of the window before the as-of date had a value
    window_days INTEGER, -- Dynamic: the configured window in days (default 28); null for fixed
    sd_multiplier DOUBLE PRECISION, -- Dynamic: the configured k (default 3); null for fixed
    status VARCHAR NOT NULL, -- 'ok', 'breach' (a kpi_alert row), 'not_measured: ...' (value null) or 'insufficient_data: ...' (too little history for a dynamic band)
    PRIMARY KEY (as_of_date, metric, threshold_kind)
)
