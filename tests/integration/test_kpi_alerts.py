"""KPI alerts end to end: thresholds breached in real runs land in kpi_alert and reach a real local
webhook, after the load committed and only then; a misconfigured channel fails the run loudly."""
from __future__ import annotations

import statistics
from datetime import date
from pathlib import Path

import pytest
import yaml

from pipeline.settings import PROJECT_ROOT
from tests.conftest import read_table, run_crm
from tests.support.alert_sinks import webhook_server

pytestmark = pytest.mark.airflow
DAYS = [date(2025, 12, 29), date(2025, 12, 30), date(2025, 12, 31)]
THRESHOLDS = [
    {"metric": "customers", "max": 1, "severity": "critical"},  # breaks on every day
    # The customer count grows every day, so from the third day on it is above its trailing band.
    {"metric": "customers", "kind": "dynamic", "side": "above", "k": 0.5, "window_days": 28, "min_history_days": 2,
     "severity": "warning"},
    {"metric": "nps", "min": -100, "severity": "info"},  # never breaks
]


def scoring_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((PROJECT_ROOT / "config" / "scoring.yml").read_text())
    path = tmp_path / "scoring.yml"
    path.write_text(yaml.safe_dump(config | {"kpi_thresholds": THRESHOLDS}))
    return path


def alert_messages(hook) -> list[dict]:
    return [r["json"]["payload"] for r in hook.requests if r["json"]["payload"].get("kind") == "kpi_alerts"]


def alerts(url: str):
    return read_table(url, "SELECT * FROM kpi_alert ORDER BY as_of_date, metric, threshold_kind, bound")


def test_breached_thresholds_are_stored_then_sent(tmp_path, crm_home, warehouse_url, airflow_home):
    with webhook_server() as hook:
        env = {"CRM_SCORING_CONFIG": str(scoring_config(tmp_path)), "CRM_ALERT_WEBHOOK_URL": hook.url}
        run_crm(crm_home, airflow_home, warehouse_url, "backfill", "--start", DAYS[0].isoformat(),
                "--end", DAYS[1].isoformat(), extra_env=env)
        run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", DAYS[2].isoformat(), extra_env=env)

        stored = alerts(warehouse_url)
        assert stored.select("as_of_date", "threshold_kind", "bound", "severity").rows() == [
            (DAYS[0], "fixed", "max", "critical"), (DAYS[1], "fixed", "max", "critical"),
            (DAYS[2], "dynamic", "max", "warning"), (DAYS[2], "fixed", "max", "critical")]
        customers = read_table(warehouse_url, "SELECT customers FROM kpi_daily ORDER BY as_of_date")["customers"].to_list()
        dynamic = stored.filter(threshold_kind="dynamic").row(0, named=True)
        mean, sd = statistics.mean(customers[:2]), statistics.stdev(customers[:2])
        assert (dynamic["value"], dynamic["trailing_days"], dynamic["window_days"]) == (customers[2], 2, 28)
        assert dynamic["trailing_mean"] == pytest.approx(mean) and dynamic["trailing_sd"] == pytest.approx(sd)
        assert dynamic["threshold"] == pytest.approx(mean + 0.5 * sd) and dynamic["sd_multiplier"] == 0.5
        checks = read_table(warehouse_url, "SELECT as_of_date, status FROM kpi_threshold_check "
                                           "WHERE threshold_kind = 'dynamic' ORDER BY as_of_date")
        assert checks["status"].to_list() == [
            "insufficient_data: 0 of the 28 days before 2025-12-29 have customers; 2 needed",
            "insufficient_data: 1 of the 28 days before 2025-12-30 have customers; 2 needed", "breach"]

        # One message per day, each with exactly that day's committed alerts.
        sent = alert_messages(hook)
        assert [m["as_of_date"] for m in sent] == [d.isoformat() for d in DAYS]
        for message in sent:
            day = stored.filter(as_of_date=date.fromisoformat(message["as_of_date"]))
            assert sorted((a["metric"], a["threshold_kind"], a["bound"], a["value"]) for a in message["alerts"]) == \
                sorted(day.select("metric", "threshold_kind", "bound", "value").rows())
        assert hook.requests[-1]["json"]["subject"] == "[crm] KPI alerts as of 2025-12-31: 2, 1 critical"

        # A load killed before its commit notifies nobody, and leaves the alerts as they were.
        killed = run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", DAYS[2].isoformat(), check=False,
                         extra_env=env | {"CRM_FAILPOINT": "load:before_commit"})
        assert killed.returncode != 0 and len(alert_messages(hook)) == 3
        assert alerts(warehouse_url).equals(stored)

        # A misconfigured channel fails the run at once (no retries: exactly one more delivery to the
        # channel that works), after the load committed.
        broken = run_crm(crm_home, airflow_home, warehouse_url, "run", "--ds", DAYS[2].isoformat(), check=False,
                         extra_env=env | {"CRM_ALERT_SMTP_URL": "smtp://127.0.0.1:1"})
        assert broken.returncode == 1 and "NotifyConfigError" in broken.stderr, broken.stderr
        assert [m["as_of_date"] for m in alert_messages(hook)] == [d.isoformat() for d in DAYS] + ["2025-12-31"]
        assert alerts(warehouse_url).equals(stored)
