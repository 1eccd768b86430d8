"""`airflow backfill create` of three days, executed by a real scheduler, with docker-compose.yml's wiring.

No Docker engine exists in CI, so the compose stack's Airflow components run natively: api-server,
scheduler and dag-processor with the environment docker-compose.yml gives them (read back through
`docker-compose config`, translated by tests/support/compose_stack.py: service hosts become a private
PostgreSQL cluster and a local api-server, CeleryExecutor becomes LocalExecutor). The metadata DB and
the warehouse are real PostgreSQL databases, provisioned as the compose postgres services would be.

The scheduler runs the backfill's runs one at a time and in date order (`--max-active-runs 1`: a
backfill does not inherit the DAG's max_active_runs=1, its own default is 10), and the backfill run for
logical date D covers the data interval [D, D+1).

Backfill runs publish asset events like any other run (Airflow 3.3 does not tell them apart), so each
day's load queues a crm_export run for its as-of date (crm_export is scheduled on the
customer_score_daily asset, partitioned by date), and each of those runs writes that day's segment export.
"""
from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
import sqlalchemy as sa

from tests.conftest import SAMPLE_END, read_table
from tests.support.compose_stack import (
    API_SERVICE, NativeStack, airflow_argv, command_of, compose_config, free_port, native_environment,
    provision_postgres, task_log_summary, write_env_file,
)
from tests.support.pg_cluster import PostgresCluster

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

DAG_ID = "crm_daily"
EXPORT_DAG_ID = "crm_export"
SCORES_URI = "warehouse://crm/customer_score_daily"
DAYS = [SAMPLE_END - timedelta(days=2), SAMPLE_END - timedelta(days=1), SAMPLE_END]
# The native stand-ins for the compose services that run Airflow itself; the Celery worker's job is done
# by the scheduler's LocalExecutor, and the triggerer has nothing to do (no deferrable tasks).
COMPONENTS = ("airflow-apiserver", "airflow-dag-processor", "airflow-scheduler")
# Compose knobs (.env) sized for 2 shared CI cores.
ENV_OVERRIDES = {"AIRFLOW_PARALLELISM": "2", "AIRFLOW_MAX_ACTIVE_TASKS_PER_DAG": "2", "AIRFLOW_API_WORKERS": "1"}
# Test-only, not part of the compose wiring: without it, unpausing crm_daily makes the scheduler add the
# latest scheduled interval (catchup=False), today's, which on this 2025 sample would load all history
# alongside the backfill. Backfill runs are created by the CLI, not the scheduler, so they still run.
# The same switch also stops the scheduler from creating asset-triggered runs: after the backfill the
# scheduler restarts with it on, crm_daily paused, to run crm_export on the queued events.
TEST_ONLY = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
EXPORT_PHASE = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "True"}
# About 3 minutes on 2 idle cores; the bounds leave room for a CI host busy with other tests.
BACKFILL_TIMEOUT = 600
EXPORT_TIMEOUT = 300
STARTUP_TIMEOUT = 180


@pytest.fixture
def stack(tmp_path):
    stack = NativeStack(tmp_path / "logs")
    yield stack
    stack.stop()


def wait_for(what: str, check, stack: NativeStack, timeout: float, interval: float = 1.0):
    deadline = time.monotonic() + timeout
    while True:
        stack.check_alive()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def api_healthy(port: int, path: str) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_backfill_create_runs_three_days_under_a_real_scheduler(tmp_path, crm_home, stack):
    started = time.monotonic()
    config = compose_config(write_env_file(tmp_path / "compose.env", ENV_OVERRIDES))
    services = config["services"]
    airflow_home = tmp_path / "airflow"
    api_port = free_port()
    # One set of host ports for every component, as in a container network where all share the defaults.
    host_ports = {"AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": free_port(),
                  "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": free_port()}
    metadata: sa.Engine | None = None
    timings: dict[str, float] = {}

    with PostgresCluster(dbname="postgres_admin") as pg:
        provision_postgres(config, port=pg.port, admin_user=pg.user, admin_password=pg.password)
        envs = {name: native_environment(config, name, postgres_port=pg.port, api_port=api_port, crm_home=crm_home,
                                         airflow_home=airflow_home, host_ports=host_ports) | TEST_ONLY
                for name in ("airflow-init", *COMPONENTS)}
        sched_env = envs["airflow-scheduler"]
        warehouse_url = sched_env["CRM_WAREHOUSE_URL"]
        assert "127.0.0.1" in warehouse_url and sched_env["CRM_HOME"] == str(crm_home)
        try:
            stack.run("airflow-init", airflow_argv(command_of(services["airflow-init"])), envs["airflow-init"])
            timings["db migrate"] = time.monotonic() - started
            for name in COMPONENTS:
                stack.start(name, airflow_argv(command_of(services[name])), envs[name])

            # The compose healthcheck's URL, on the native port.
            health = next(a for a in services[API_SERVICE]["healthcheck"]["test"] if a.startswith("http"))
            health_path = "/" + health.split("://", 1)[1].split("/", 1)[1]
            wait_for("the api-server", lambda: api_healthy(api_port, health_path), stack, STARTUP_TIMEOUT)
            metadata = sa.create_engine(sched_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], poolclass=sa.NullPool)
            for dag_id in (DAG_ID, EXPORT_DAG_ID):
                wait_for(f"the dag-processor to register {dag_id}", lambda: _serialized(metadata, dag_id), stack,
                         STARTUP_TIMEOUT)
            timings["components up"] = time.monotonic() - started

            # What an operator types (docs/operations.md), against the scheduler's configuration. Asset
            # events queue runs only for consumers unpaused when the event happens.
            stack.run("cli", airflow_argv(["dags", "unpause", EXPORT_DAG_ID]), sched_env)
            stack.run("cli", airflow_argv(["dags", "unpause", DAG_ID]), sched_env)
            stack.run("cli", airflow_argv(["backfill", "create", "--dag-id", DAG_ID, "--from-date", DAYS[0].isoformat(),
                                           "--to-date", DAYS[-1].isoformat(), "--max-active-runs", "1"]), sched_env)
            timings["backfill queued"] = time.monotonic() - started

            runs = wait_for("the 3 backfill runs to finish", lambda: _finished_or_failing(metadata), stack,
                            BACKFILL_TIMEOUT, interval=2)
            timings["backfill done"] = time.monotonic() - started
            assert [r["state"] for r in runs] == ["success"] * 3, runs

            stack.run("cli", airflow_argv(["dags", "pause", DAG_ID]), sched_env)
            stack.restart("airflow-scheduler", airflow_argv(command_of(services["airflow-scheduler"])),
                          sched_env | EXPORT_PHASE)
            exports = wait_for("the 3 asset-triggered crm_export runs to finish", lambda: _exports_finished(metadata),
                               stack, EXPORT_TIMEOUT, interval=2)
            timings["exports done"] = time.monotonic() - started
            consumed = _consumed_dates(metadata)
        except Exception as exc:
            raise AssertionError(f"{exc}\n\n{_diagnostics(stack, metadata, airflow_home)}") from exc
        finally:
            stack.stop()
            if metadata is not None:
                metadata.dispose()

        # One run per day, logical date D covering [D, D+1), in date order and one at a time.
        assert [r["logical_date"].date() for r in runs] == DAYS
        for run, day in zip(runs, DAYS):
            assert run["run_type"] == "backfill"
            assert run["data_interval_start"] == _midnight(day)
            assert run["data_interval_end"] == _midnight(day + timedelta(days=1))
        for before, after in zip(runs, runs[1:]):
            assert after["start_date"] >= before["end_date"], (before, after)

        # The warehouse holds each day's load: the first run on the empty warehouse took all history up
        # to its day, each later run exactly its own day's batches, and the KPIs have one row per day.
        batches = read_table(warehouse_url, "SELECT source, batch_date, run_date FROM etl_batch")
        assert set(batches["run_date"]) == set(DAYS)
        assert batches.filter(pl.col("run_date") == DAYS[0])["batch_date"].max() == DAYS[0]
        for day in DAYS[1:]:
            assert set(batches.filter(pl.col("run_date") == day)["batch_date"]) == {day}
        kpis = read_table(warehouse_url, "SELECT as_of_date FROM kpi_daily ORDER BY as_of_date")
        assert kpis["as_of_date"].to_list() == DAYS

        # Each backfill run's load published the scores asset for its day; crm_export ran once per day on
        # those events and wrote that day's export, no other.
        assert [(r["run_type"], r["state"]) for r in exports] == [("asset_triggered", "success")] * 3, exports
        assert sorted(r["partition_key"] for r in exports) == [d.isoformat() for d in DAYS], exports
        assert {run: dates for run, dates in consumed.items()} == {r["run_id"]: [r["partition_key"]] for r in exports}
        assert sorted(p.name for p in (crm_home / "exports").iterdir()) == [d.isoformat() for d in DAYS]
        for day in DAYS:
            exported = pl.read_parquet(crm_home / "exports" / day.isoformat() / "segments.parquet")
            scored = read_table(warehouse_url, "SELECT customer_id FROM customer_score_daily WHERE as_of_date = :d", d=day)
            assert exported.height == scored.height > 0 and (exported["as_of_date"] == day).all()
            assert exported["customer_id"].to_list() == sorted(scored["customer_id"].to_list())
    per_run = ", ".join(f"{r['logical_date']:%m-%d} {(r['end_date'] - r['start_date']).total_seconds():.0f}s" for r in runs)
    print(" | ".join(f"{k} at {v:.0f}s" for k, v in timings.items()), f"| runs: {per_run}",
          f"| total {time.monotonic() - started:.0f}s")


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _serialized(engine: sa.Engine, dag_id: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM serialized_dag WHERE dag_id = :d"), {"d": dag_id}).scalar() > 0


def _runs(engine: sa.Engine, dag_id: str = DAG_ID) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT run_id, run_type, state, logical_date, data_interval_start, data_interval_end, start_date, end_date"
            " FROM dag_run WHERE dag_id = :d ORDER BY logical_date, run_after"), {"d": dag_id})
        return [dict(r._mapping) for r in rows]


def _failing_tasks(engine: sa.Engine, dag_id: str = DAG_ID) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT run_id, task_id, state FROM task_instance WHERE dag_id = :d"
            " AND state IN ('failed', 'up_for_retry', 'upstream_failed')"), {"d": dag_id})
        return [tuple(r) for r in rows]


def _exports_finished(engine: sa.Engine) -> list[dict] | None:
    """crm_export's runs once there is one per backfilled day and all are done."""
    failing = _failing_tasks(engine, EXPORT_DAG_ID)
    if failing:
        raise AssertionError(f"task instances failed: {failing}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT run_id, run_type, state, partition_key FROM dag_run WHERE dag_id = :d"
                                    " ORDER BY partition_key"), {"d": EXPORT_DAG_ID})
        runs = [dict(r._mapping) for r in rows]
    if len(runs) >= len(DAYS) and all(r["state"] in ("success", "failed") for r in runs):
        return runs
    return None


def _consumed_dates(engine: sa.Engine) -> dict[str, list[str]]:
    """The as_of_date of each scores event each crm_export run consumed, by run."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT r.run_id, e.extra FROM dag_run AS r JOIN dagrun_asset_event AS c ON c.dag_run_id = r.id"
            " JOIN asset_event AS e ON e.id = c.event_id JOIN asset AS a ON a.id = e.asset_id"
            " WHERE r.dag_id = :d AND a.uri = :uri ORDER BY e.id"), {"d": EXPORT_DAG_ID, "uri": SCORES_URI}).all()
    consumed: dict[str, list[str]] = {}
    for run_id, extra in rows:
        extra = json.loads(extra) if isinstance(extra, str) else extra
        consumed.setdefault(run_id, []).append(extra["as_of_date"])
    return consumed


def _finished_or_failing(engine: sa.Engine) -> list[dict] | None:
    """The runs once all three are done; raises at the first failed task rather than sit out its retries
    (crm_daily retries after 2 minutes)."""
    failing = _failing_tasks(engine)
    if failing:
        raise AssertionError(f"task instances failed: {failing}")
    runs = _runs(engine)
    if len(runs) >= 3 and all(r["state"] in ("success", "failed") for r in runs):
        return runs
    return None


def _diagnostics(stack: NativeStack, engine: sa.Engine | None, airflow_home) -> str:
    parts = []
    if engine is not None:
        try:
            for dag_id in (DAG_ID, EXPORT_DAG_ID):
                parts.append(f"{dag_id} runs:\n" + "\n".join(map(str, _runs(engine, dag_id))))
                with engine.connect() as conn:
                    tis = conn.execute(sa.text(
                        "SELECT run_id, task_id, state, try_number, to_char(start_date, 'HH24:MI:SS') AS started,"
                        " round(duration::numeric, 1) AS seconds FROM task_instance WHERE dag_id = :d"
                        " ORDER BY run_id, start_date NULLS LAST"), {"d": dag_id}).all()
                parts.append(f"{dag_id} task instances (run, task, state, try, started, seconds):\n"
                             + "\n".join(map(str, tis)))
                bad = [(r[0], r[1]) for r in tis if r[2] not in ("success", None)]
                parts.append(task_log_summary(airflow_home, dag_id, bad))
        except Exception as exc:  # the metadata DB may be what broke
            parts.append(f"(metadata DB unreadable: {exc})")
    parts.append(stack.log_tails())
    return "\n\n".join(parts)
