"""Shared fixtures: a private PostgreSQL cluster, generated sample data, and `crm run` as users call it."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

SAMPLE_END = date(2025, 12, 31)


@pytest.fixture(scope="session")
def pg_cluster():
    from tests.support.pg_cluster import PostgresCluster

    with PostgresCluster() as pg:
        yield pg


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    from pipeline.generate import generate

    out = tmp_path_factory.mktemp("sample")
    generate(out, customers=1500, days=40, seed=7, end_date=SAMPLE_END, dirty_rate=0.004)
    return out


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> Path:
    """A migrated Airflow metadata DB per test worker (SQLite; `airflow db migrate` once)."""
    home = tmp_path_factory.mktemp("airflow")
    code = "from pipeline.cli import migrate_airflow_db; migrate_airflow_db()"
    subprocess.run([sys.executable, "-c", code], env=os.environ | {"AIRFLOW_HOME": str(home)}, check=True)
    return home


@pytest.fixture
def crm_home(tmp_path, sample_dir) -> Path:
    home = tmp_path / "crm"
    home.mkdir()
    (home / "sample").symlink_to(sample_dir)
    return home


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, crm_home) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{crm_home / 'warehouse.duckdb'}"
    return request.getfixturevalue("pg_cluster").new_database("wh")


def run_crm(home: Path, airflow_home: Path, url: str, *args: str, extra_env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    env = os.environ | {
        "CRM_HOME": str(home),
        "CRM_WAREHOUSE_URL": url,
        "CRM_PII_SALT": "test-salt",
        "AIRFLOW_HOME": str(airflow_home),
    } | (extra_env or {})
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        log = next(iter(sorted((home / "logs").glob("*.log"), reverse=True)), None) if (home / "logs").exists() else None
        tail = log.read_text()[-4000:] if log else ""
        raise AssertionError(f"crm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}\n{tail}")
    return proc


def read_table(url: str, query: str | sa.Executable, **params) -> pl.DataFrame:
    from pipeline.warehouse import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(query) if isinstance(query, str) else query, params)
            return pl.DataFrame([tuple(r) for r in result], schema=list(result.keys()), orient="row", infer_schema_length=None)
    finally:
        engine.dispose()


def table_checksum(url: str, table: str) -> str:
    """Order-independent content hash of a whole table or view ("name" or "schema.name")."""
    from pipeline.warehouse import table_ref

    rows = read_table(url, sa.select(sa.literal_column("*")).select_from(table_ref(table))).rows()
    return hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()


def pytest_sessionfinish(session, exitstatus):
    session.config._crm_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """After the summary, skip interpreter teardown in the main process: with GX imported, DuckDB's
    nanobind bindings print pages of spurious 'leaked instance' reports that would bury it."""
    if not hasattr(config, "workerinput") and hasattr(config, "_crm_exitstatus"):
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(config._crm_exitstatus)
