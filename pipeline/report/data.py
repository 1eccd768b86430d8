"""What the run report reads from the warehouse: one named query per frame (sql/queries/report_*.sql).

Every aggregation happens in SQL, so the report's size does not grow with the customer count.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import polars as pl
import sqlalchemy as sa

from pipeline.scoring.config import SEVERITIES, ComplaintConfig, ScoringConfig
from pipeline.warehouse import sql_text


@dataclass(frozen=True)
class ReportData:
    as_of: date
    pyramid: pl.DataFrame  # pyramid_tier, tier_rank, customers, revenue_amount, revenue_share
    rfm_grid: pl.DataFrame  # r_score, f_score, customers, mean_monetary
    clv_bins: pl.DataFrame  # bin, bin_start, bin_end, customers, scored, p99, max_clv
    kpi_history: pl.DataFrame  # kpi_daily rows up to as_of
    kpi_alerts: pl.DataFrame  # kpi_alert rows up to as_of
    kpi_bounds: pl.DataFrame  # as_of_date, metric, lower_bound, upper_bound of the dynamic thresholds
    complaint_sla: pl.DataFrame  # severity, sla_hours, outcome, tickets
    data_quality: pl.DataFrame  # per source: this run's and all loaded batches and rows
    quarantine_reasons: pl.DataFrame  # source, reason_code, quarantined_rows (this run)
    expectations: pl.DataFrame  # source, expectations, failed_expectations (this run)

    @property
    def kpis(self) -> dict:
        """The as-of date's kpi_daily row; empty when the run scored nothing."""
        if not self.kpi_history.height:
            return {}
        today = self.kpi_history.filter(pl.col("as_of_date") == self.as_of)
        return today.row(0, named=True) if today.height else {}


def query(conn: sa.Connection, name: str, **params) -> pl.DataFrame:
    """The rows of sql/queries/<name>.sql as a frame; an empty result keeps its column names (typed Null)."""
    result = conn.execute(sa.text(sql_text(f"queries/{name}")), params)
    columns = list(result.keys())
    rows = [tuple(r) for r in result]
    if not rows:
        return pl.DataFrame(schema={c: pl.Null for c in columns})
    frame = pl.DataFrame(rows, schema=columns, orient="row", infer_schema_length=None)
    return frame.with_columns(pl.col(pl.Float32, pl.Float64).fill_nan(None))  # NaN is not JSON


def end_of_day(as_of: date) -> datetime:
    """Midnight UTC after the as-of date: the first instant the day's scores do not see."""
    return datetime.combine(as_of + timedelta(days=1), time(), tzinfo=timezone.utc)


def sla_parameters(config: ComplaintConfig) -> dict[str, float]:
    """sla_<severity> for every known severity (its configured SLA or the default) plus sla_default."""
    hours = {f"sla_{s}": float(config.sla_hours.get(s, config.default_sla_hours)) for s in SEVERITIES}
    return hours | {"sla_default": float(config.default_sla_hours)}


def read_report_data(conn: sa.Connection, as_of: date, config: ScoringConfig) -> ReportData:
    return ReportData(
        as_of=as_of,
        pyramid=query(conn, "report_pyramid", as_of=as_of),
        rfm_grid=query(conn, "report_rfm_grid", as_of=as_of),
        clv_bins=query(conn, "report_clv_histogram", as_of=as_of),
        kpi_history=query(conn, "report_kpi_history", as_of=as_of),
        kpi_alerts=query(conn, "report_kpi_alerts", as_of=as_of),
        kpi_bounds=query(conn, "report_kpi_bounds", as_of=as_of),
        complaint_sla=query(conn, "report_complaint_sla", as_of=as_of, as_of_end=end_of_day(as_of),
                            **sla_parameters(config.complaints)),
        data_quality=query(conn, "report_data_quality", as_of=as_of),
        quarantine_reasons=query(conn, "report_quarantine_reasons", as_of=as_of),
        expectations=query(conn, "report_expectations", as_of=as_of),
    )
