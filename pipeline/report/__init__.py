"""The run report: one self-contained HTML file per run with the day's charts and data-quality counts.

`write_report` reads the warehouse after a load (sql/queries/report_*.sql), builds the charts
(charts.py) and writes $CRM_HOME/reports/run_<date>.html (page.py). What it shows: docs/report.md.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from pipeline.scoring.config import ScoringConfig, load_scoring_config


def report_path(out_dir: str | Path, as_of: date) -> Path:
    return Path(out_dir) / f"run_{as_of.isoformat()}.html"


def write_report(engine_or_url: sa.Engine | str, as_of: date, out_dir: str | Path,
                 config: ScoringConfig | None = None) -> Path:
    """Writes the report for the data interval `as_of` into out_dir and returns its path. The
    scoring config supplies the SLAs and KPI thresholds; by default the one in the settings."""
    from pipeline.report.charts import report_charts
    from pipeline.report.data import read_report_data
    from pipeline.report.page import render_page
    from pipeline.settings import load_settings
    from pipeline.warehouse import make_engine

    config = config or load_scoring_config(load_settings().scoring_file)
    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    try:
        with engine.connect() as conn:
            data = read_report_data(conn, as_of, config)
    finally:
        if engine is not engine_or_url:
            engine.dispose()
    html = render_page(data, report_charts(data, config), engine.dialect.name)
    return write_text_atomic(report_path(out_dir, as_of), html)


def write_text_atomic(path: Path, text: str) -> Path:
    """Readers (a browser, a link in the task log) never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
