"""KPI thresholds checked against the one-row company KPI frame: fixed bounds, or dynamic bands from
the KPI's own trailing history (docs/metrics-kpi.md).

    checks = kpi_threshold_checks(kpis, config.kpi_thresholds, history)   # one row per threshold: kpi_threshold_check
    alerts = alerts_from_checks(checks)                                    # one row per breach: kpi_alert

`history` holds earlier kpi_daily rows (as_of_date plus the metric columns); only the rows of the
`window_days` before the as-of date are used, so a backfilled date sees exactly what its daily run saw.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from pipeline.scoring.config import KpiThreshold

OK, BREACH = "ok", "breach"
# Float noise must not turn an unchanged KPI into a breach of a zero-width band (sd = 0).
_RELATIVE_TOLERANCE = 1e-9

_STATS_SCHEMA = {"trailing_mean": pl.Float64, "trailing_sd": pl.Float64, "trailing_days": pl.Int64,
                 "window_days": pl.Int32, "sd_multiplier": pl.Float64}
CHECK_SCHEMA = {
    "as_of_date": pl.Date, "metric": pl.String, "threshold_kind": pl.String, "severity": pl.String,
    "value": pl.Float64, "lower_bound": pl.Float64, "upper_bound": pl.Float64, **_STATS_SCHEMA, "status": pl.String,
    "bound": pl.String, "message": pl.String,
}
ALERT_SCHEMA = {
    "as_of_date": pl.Date, "metric": pl.String, "threshold_kind": pl.String, "value": pl.Float64,
    "threshold": pl.Float64, "bound": pl.String, "severity": pl.String, "message": pl.String, **_STATS_SCHEMA,
}
# kpi_threshold_check's columns: the check frame without the breach details that kpi_alert carries.
CHECK_COLUMNS = [c for c in CHECK_SCHEMA if c not in ("bound", "message")]


def _number(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def trailing_values(history: pl.DataFrame | None, metric: str, as_of: date, window_days: int) -> pl.Series:
    """The metric's non-null values on the `window_days` days before the as-of date (not the date itself)."""
    if history is None or metric not in history.columns or "as_of_date" not in history.columns:
        return pl.Series(metric, [], dtype=pl.Float64)
    window = history.filter(pl.col("as_of_date").is_between(as_of - timedelta(days=window_days), as_of,
                                                            closed="left"))
    twice = window["as_of_date"].filter(window["as_of_date"].is_duplicated()).unique().sort().to_list()
    if twice:
        raise ValueError(f"KPI history has more than one row for a date: {twice}")
    return window[metric].cast(pl.Float64).fill_nan(None).drop_nulls()


def check_threshold(value: float | None, threshold: KpiThreshold, as_of: date,
                    history: pl.DataFrame | None = None) -> dict:
    """One threshold against one KPI value: its bounds, the trailing statistics used, and a status
    (ok, breach, not_measured: ..., insufficient_data: ...); `bound` and `message` describe a breach."""
    t = threshold
    row = {"as_of_date": as_of, "metric": t.metric, "threshold_kind": t.kind, "severity": t.severity, "value": value,
           "lower_bound": t.min, "upper_bound": t.max, "trailing_mean": None, "trailing_sd": None,
           "trailing_days": None, "window_days": None, "sd_multiplier": None, "bound": None, "message": None}
    if t.kind == "dynamic":
        values = trailing_values(history, t.metric, as_of, t.window_days)
        row |= {"trailing_days": values.len(), "window_days": t.window_days, "sd_multiplier": t.k}
        if values.len() < t.min_history_days:
            status = (f"insufficient_data: {values.len()} of the {t.window_days} days before {as_of} have "
                      f"{t.metric}; {t.min_history_days} needed")
            return row | {"lower_bound": None, "upper_bound": None, "status": status}
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        row |= {"trailing_mean": mean, "trailing_sd": sd,
                "lower_bound": mean - t.k * sd if t.side in ("both", "below") else None,
                "upper_bound": mean + t.k * sd if t.side in ("both", "above") else None}
    if value is None:
        return row | {"status": f"not_measured: {t.metric} is null"}
    tolerance = _RELATIVE_TOLERANCE * max(1.0, abs(row["trailing_mean"] or 0.0)) if t.kind == "dynamic" else 0.0
    lower, upper = row["lower_bound"], row["upper_bound"]
    if lower is not None and value < lower - tolerance:
        return row | {"status": BREACH, "bound": "min", "message": _message(value, t, row, "below", lower)}
    if upper is not None and value > upper + tolerance:
        return row | {"status": BREACH, "bound": "max", "message": _message(value, t, row, "above", upper)}
    return row | {"status": OK}


def _message(value: float, t: KpiThreshold, row: dict, direction: str, limit: float) -> str:
    if t.kind == "fixed":
        return f"{t.metric} = {value:.4g} is {direction} the {'minimum' if direction == 'below' else 'maximum'} " \
               f"{limit:g}"
    sign = "-" if direction == "below" else "+"
    return (f"{t.metric} = {value:.4g} is {direction} its {t.window_days}-day band: mean {row['trailing_mean']:.4g} "
            f"{sign} {t.k:g} x sd {row['trailing_sd']:.4g} = {limit:.4g} (over {row['trailing_days']} prior days)")


def kpi_threshold_checks(kpis: pl.DataFrame, thresholds: Sequence[KpiThreshold],
                         history: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per threshold for the one-row KPI frame (CHECK_SCHEMA).

    A null (or NaN) value raises no alert: a missing figure is reported by its status column, not as
    a breach. A threshold on a metric the frame lacks is a configuration error and raises KeyError.
    """
    if kpis.height != 1:
        raise ValueError(f"KPI thresholds are checked on one row of KPIs, got {kpis.height}")
    row = kpis.row(0, named=True)
    as_of = row.get("as_of_date")
    checks = []
    for t in thresholds:
        if t.metric not in row:
            raise KeyError(f"KPI threshold on unknown metric {t.metric!r}")
        checks.append(check_threshold(_number(row[t.metric]), t, as_of, history))
    return pl.DataFrame(checks, schema=CHECK_SCHEMA)


def alerts_from_checks(checks: pl.DataFrame) -> pl.DataFrame:
    """The breaches among the checks, as kpi_alert rows (ALERT_SCHEMA)."""
    breaches = checks.filter(pl.col("status") == BREACH)
    threshold = pl.when(pl.col("bound") == "min").then(pl.col("lower_bound")).otherwise(pl.col("upper_bound"))
    return breaches.with_columns(threshold.alias("threshold")).select(list(ALERT_SCHEMA)).cast(ALERT_SCHEMA)


def kpi_alerts(kpis: pl.DataFrame, thresholds: Sequence[KpiThreshold],
               history: pl.DataFrame | None = None) -> pl.DataFrame:
    """One alert row per threshold the one-row KPI frame breaks (see kpi_threshold_checks)."""
    return alerts_from_checks(kpi_threshold_checks(kpis, thresholds, history))
