"""Tests for tests/support/pg_cluster.py against a real PostgreSQL server."""

import os

import pytest
import sqlalchemy as sa

from tests.support import pg_cluster
from tests.support.pg_cluster import PostgresCluster, PostgresClusterError, pid_alive


@pytest.fixture(scope="module")
def cluster():
    with PostgresCluster() as pg:
        yield pg


@pytest.fixture
def engine(cluster):
    eng = sa.create_engine(cluster.url)
    yield eng
    eng.dispose()


@pytest.mark.postgres
def test_roundtrip(engine):
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE contacts (id serial PRIMARY KEY, email text NOT NULL)"))
        conn.execute(
            sa.text("INSERT INTO contacts (email) VALUES (:e)"),
            [{"e": "a@example.com"}, {"e": "zoë@example.com"}],
        )
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_database()")).scalar() == "crm"
        assert conn.execute(sa.text("SELECT email FROM contacts ORDER BY id")).scalars().all() == [
            "a@example.com",
            "zoë@example.com",
        ]
        assert conn.execute(sa.text("SHOW server_encoding")).scalar() == "UTF8"


@pytest.mark.postgres
def test_wrong_password_refused(cluster):
    bad = sa.engine.make_url(cluster.url).set(password="not-the-password")
    eng = sa.create_engine(bad)
    try:
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
            eng.connect()
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_create_database_and_admin_url(cluster):
    cluster.create_database("other")
    eng = sa.create_engine(cluster.admin_url("other"))
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == "other"
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_restart_keeps_data(cluster):
    eng = sa.create_engine(cluster.url)
    try:
        with eng.begin() as conn:
            conn.execute(sa.text("CREATE TABLE survives (v int)"))
            conn.execute(sa.text("INSERT INTO survives VALUES (42)"))
        old_pid, old_port = cluster.pid, cluster.port
        cluster.restart()
        assert cluster.port == old_port
        assert cluster.pid != old_pid and not pid_alive(old_pid)
        eng.dispose()  # pooled connections died with the old server
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT v FROM survives")).scalar() == 42
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_stop_kills_process_and_removes_dir():
    pg = PostgresCluster(dbname="scratch").start()
    pid, tmpdir = pg.pid, pg.tmpdir
    assert pid_alive(pid) and tmpdir.is_dir()
    pg.stop()
    assert not pid_alive(pid)
    assert not os.path.exists(tmpdir)
    pg.stop()  # idempotent


def test_missing_binaries_error_names_install_script(monkeypatch):
    monkeypatch.setattr(pg_cluster.glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(PostgresClusterError, match="scripts/install_system_deps.sh"):
        PostgresCluster()
