"""The warehouse's PostgreSQL server crashes (pg_ctl stop -m immediate: every backend killed, no
checkpoint) or restarts while a run is under way. The task that was using it fails loudly with the
driver's error, its transaction is gone with the server, and its retry, a new process as Airflow's
retry is, gives exactly the tables of an uninterrupted run. Tasks and engines never reuse a
connection the server has dropped."""
from __future__ import annotations

import re
import subprocess
import time

import pytest
import sqlalchemy as sa

from pipeline.warehouse import make_engine
from tests.conftest import SAMPLE_END
from tests.faults.conftest import (
    PROJECT_ROOT, driver_command, driver_env, drive, parse_lines, source_records, warehouse_rows,
    warehouse_state,
)
from tests.faults.driver import extract_and_stage, score_and_load

# Its own group: the PostgreSQL reference is built once, on the worker that runs these.
pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.xdist_group("faults_postgres")]
# What psycopg says when the server went away under a connection, or is not there to connect to.
DROPPED = r"OperationalError: .*(terminating connection|server closed the connection|connection is lost|connection .*failed)"


@pytest.fixture
def server(fault_pg):
    """The suite's cluster, started again after the test whatever happened in it."""
    yield fault_pg
    if fault_pg.pid is None:
        fault_pg.start_again()


def open_transactions(url: str) -> int:
    """Sessions on url's database inside a transaction, other than the one asking."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND xact_start IS NOT NULL AND pid <> pg_backend_pid()")).scalar_one()
    finally:
        engine.dispose()


def wait_for(path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the load ended ({proc.returncode}) before its failpoint:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"the load did not reach {path.name} in {timeout} s")
        time.sleep(0.1)


@pytest.mark.parametrize("point,start", [
    # The whole new date written, the commit not yet sent.
    pytest.param("load:before_commit", "mid", id="before_commit"),
    # A re-run of a loaded date (a retry, a backfill): its partitions already deleted, the COPY under way.
    pytest.param("load:mid_copy", "end", id="mid_copy_of_a_rerun"),
])
def test_server_crash_inside_the_load_then_the_retry_succeeds(point, start, server, at_mid, references, tally, tmp_path):
    warehouse = at_mid("postgres", after_end=start == "end")
    reference = references("postgres")
    before = reference.end_state if start == "end" else reference.mid_state
    assert warehouse_state(warehouse.url) == before
    # The day's tasks in a process of their own, held at the failpoint inside the load's transaction.
    env = driver_env(CRM_FAILPOINT_PAUSE=point, CRM_FAILPOINT_DIR=str(tmp_path))
    proc = subprocess.Popen(driver_command(warehouse, SAMPLE_END), cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / f"{point}.reached", proc)
    in_transaction = open_transactions(warehouse.url)
    assert in_transaction == 1  # the load's, with its rows written but not committed
    server.crash()
    (tmp_path / f"{point}.resume").touch()
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stderr[-3000:]
    (line,) = parse_lines(stdout)
    assert not line["ok"]
    assert re.search(DROPPED, line["error"]), line["error"]
    server.start_again()
    assert warehouse_state(warehouse.url) == before  # the crash took the transaction with it
    # Airflow's retry of the load task: a new process, new connections, the same inputs.
    code, lines, stderr = drive(warehouse, SAMPLE_END, load_only=True)
    assert code == 0 and lines[0]["ok"], stderr[-3000:]
    assert warehouse_state(warehouse.url) == reference.end_state
    tally(f"database crash at {point}, load retried", warehouse, source_records(warehouse.sample, SAMPLE_END),
          warehouse_rows(warehouse.url))


def test_server_restart_between_tasks_and_a_task_started_while_it_is_down(server, at_mid, references, tally):
    """Extract and stage ran; the server restarts before score and load. A task started while it is
    down fails at once, naming the server; the tasks after the restart need no retry at all."""
    warehouse = at_mid("postgres")
    staged = extract_and_stage(warehouse.home, warehouse.url, SAMPLE_END)
    server.crash()
    with pytest.raises(sa.exc.OperationalError, match=rf"127\.0\.0\.1.*port {server.port}"):
        extract_and_stage(warehouse.home, warehouse.url, SAMPLE_END)
    server.start_again()
    score_and_load(warehouse.home, warehouse.url, SAMPLE_END, staged)
    assert warehouse_state(warehouse.url) == references("postgres").end_state
    tally("database restart between tasks", warehouse, source_records(warehouse.sample, SAMPLE_END),
          warehouse_rows(warehouse.url))


def test_a_pooled_engine_does_not_hand_out_a_dropped_connection(server):
    """A long-lived engine (one Airflow worker process running many tasks) kept connections in its
    pool across a restart: make_engine's pre-ping replaces them instead of failing the next task."""
    url = server.new_database("pool")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            before = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert engine.pool.checkedin() == 1
        server.crash()
        server.start_again()
        with engine.connect() as conn:
            after = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
        assert after != before
        # A connection that was in use when the server went away: its error is loud, and the pool
        # drops it rather than handing it out again.
        with engine.connect() as conn:
            server.crash()
            with pytest.raises(sa.exc.OperationalError):
                conn.execute(sa.text("SELECT 1"))
            assert conn.invalidated
        server.start_again()
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
