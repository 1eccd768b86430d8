"""The warehouse as BI tools and CRM syncs see it, on DuckDB and the real PostgreSQL: every object
documented and filled, the example BI queries answering, history kept, crashes harmless, PII locked away."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from pipeline.summary import warehouse_objects
from pipeline.warehouse import SQL_DIR, make_engine, table_ref
from pipeline.warehouse.failpoints import POINTS
from pipeline.warehouse.schema import catalog_comments
from tests.conftest import SAMPLE_END, read_table, run_crm, table_checksum

pytestmark = pytest.mark.airflow
MID = date(2025, 12, 20)
# A quiet day raises no KPI alert, and model_fit is crm_model_refit's, not the daily run's; every
# other object must hold rows after a run.
MAY_BE_EMPTY = {"kpi_alert", "model_fit"}
EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
# E.164, or a national number written with separators; long bare digit runs (hex digests) are not phones.
PHONE = r"(?:^|[^\w+])\+[1-9]\d{7,14}\b|\(?\b\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}\b"


def checksums(url: str) -> dict[str, str]:
    return {name: table_checksum(url, name) for name in warehouse_objects()}


@pytest.fixture(scope="module", params=[
    pytest.param("duckdb", marks=pytest.mark.xdist_group("warehouse_duckdb")),
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.xdist_group("warehouse_postgres")]),
])
def loaded(request, tmp_path_factory, sample_dir, airflow_home) -> tuple[Path, str]:
    """A warehouse after the daily runs for MID and SAMPLE_END, shared by this module's tests: the
    ones that run it again must leave it exactly as they found it, and check that they do."""
    home = tmp_path_factory.mktemp("crm")
    (home / "sample").symlink_to(sample_dir)
    if request.param == "duckdb":
        url = f"duckdb:///{home / 'warehouse.duckdb'}"
    else:
        url = request.getfixturevalue("pg_cluster").new_database("wh")
    for day in (MID, SAMPLE_END):
        run_crm(home, airflow_home, url, "run", "--ds", day.isoformat())
    return home, url


# Model-based scores and the status column that says why one is missing.
MODEL_SCORES = {"p_alive": "bgnbd_status", "churn_risk_band": "bgnbd_status",
                "expected_purchases": "expected_purchases_status", "expected_average_value": "expected_value_status",
                "clv_amount": "clv_status"}


def sample_rows(sample_dir: Path, kind: str, until: date) -> int:
    files = [p for p in (sample_dir / kind).iterdir() if date.fromisoformat(p.stem[-10:]) <= until]
    if kind == "complaints":
        return sum(sum(1 for _ in f.open(encoding="utf-8")) for f in files)
    return sum(pl.read_csv(f, infer_schema=False).height for f in files)


def test_daily_runs_load_incrementally_and_reconcile(loaded, sample_dir):
    _, url = loaded
    batches = read_table(url, "SELECT * FROM etl_batch")
    # The first run on an empty warehouse took all history up to MID; the next one only what came after.
    assert set(batches.filter(pl.col("batch_date") <= MID)["run_date"]) == {MID}
    assert set(batches.filter(pl.col("batch_date") > MID)["run_date"]) == {SAMPLE_END}
    for kind in ("customers", "orders", "surveys", "complaints"):
        assert batches.filter(pl.col("source") == kind)["raw_rows"].sum() == sample_rows(sample_dir, kind, SAMPLE_END)
    # Nothing lost: every batch reconciles, and the quarantine table holds exactly the rejected rows.
    assert (batches["raw_rows"] == batches["accepted_rows"] + batches["quarantined_rows"]).all()
    quarantined = read_table(url, "SELECT count(*) AS n FROM quarantine")["n"][0]
    assert quarantined == batches["quarantined_rows"].sum() > 0
    staged = read_table(url, "SELECT count(*) AS n FROM stg_order_line")["n"][0]
    assert staged == batches.filter(pl.col("source") == "orders")["accepted_rows"].sum()


def test_every_customer_gets_each_score_or_a_reason(loaded):
    _, url = loaded
    scores = read_table(url, "SELECT * FROM customer_score_daily WHERE as_of_date = :d", d=SAMPLE_END)
    assert scores.height > 0 and scores["r_score"].is_between(1, 5).all()
    tiers = dict(read_table(url, "SELECT pyramid_tier, customers FROM customer_pyramid_daily WHERE as_of_date = :d",
                            d=SAMPLE_END).rows())
    assert tiers["vip"] >= 1 and sum(tiers.values()) == scores.height
    for score, status in MODEL_SCORES.items():
        scored = scores[score].is_not_null() & (scores[status] == "ok")
        explained = scores[score].is_null() & scores[status].str.contains(r"^(insufficient_data|failed): .+")
        assert (scored | explained).all(), (score, scores.filter(~(scored | explained)).select("customer_id", score, status))
    kpis = read_table(url, "SELECT * FROM kpi_daily ORDER BY as_of_date")
    assert kpis["as_of_date"].to_list() == [MID, SAMPLE_END] and kpis["customers"][1] == scores.height
    quality = read_table(url, "SELECT model, fit_role FROM model_quality WHERE as_of_date = :d", d=SAMPLE_END)
    assert quality.height == 4


def test_pii_only_in_the_restricted_table(loaded):
    _, url = loaded
    dim = read_table(url, "SELECT * FROM dim_customer")
    assert "email" not in dim.columns and "phone" not in dim.columns
    assert dim["email_hash"].drop_nulls().str.contains(r"^[0-9a-f]{64}$").all()
    pii = read_table(url, "SELECT email, phone FROM restricted.customer_pii")
    assert pii["email"].drop_nulls().str.contains("@").all()
    assert pii["phone"].drop_nulls().str.starts_with("+").all()
    engine = make_engine(url)
    with engine.connect() as conn:
        leaks = [(obj, column) for obj in warehouse_objects() if not obj.startswith("restricted.")
                 for column in _pii_shaped_columns(conn, obj)]
    engine.dispose()
    assert not leaks


def test_every_object_is_documented_and_filled(loaded):
    _, url = loaded
    engine = make_engine(url)
    with engine.connect() as conn:
        catalog = pl.DataFrame(catalog_comments(conn))
        counts = {name: conn.execute(sa.select(sa.func.count()).select_from(table_ref(name))).scalar_one()
                  for name in warehouse_objects()}
    engine.dispose()
    assert set(catalog["object_name"]) == set(warehouse_objects())
    assert catalog.filter(pl.col("object_comment").fill_null("").str.len_chars() < 20).is_empty()
    columns = catalog.filter((pl.col("object_kind") == "table") | (url.startswith("postgresql")))
    undocumented = columns.filter(pl.col("column_comment").fill_null("") == "")
    assert undocumented.is_empty(), undocumented.select("object_name", "column_name").rows()
    empty = sorted(name for name, n in counts.items() if n == 0 and name not in MAY_BE_EMPTY)
    assert not empty


@pytest.mark.parametrize("example", sorted(p.stem for p in (SQL_DIR / "examples").glob("*.sql")))
def test_example_bi_queries_answer(loaded, example):
    _, url = loaded
    rows = read_table(url, (SQL_DIR / "examples" / f"{example}.sql").read_text(encoding="utf-8"))
    assert rows.height > 0


def test_dim_customer_history_matches_the_daily_scores(loaded):
    """Each customer's version valid on an as-of date carries that date's tier, segment and stage."""
    _, url = loaded
    scores = read_table(url, "SELECT as_of_date, customer_id, pyramid_tier, rfm_segment, lifecycle_stage "
                             "FROM customer_score_daily")
    versions = read_table(url, "SELECT * FROM dim_customer")
    assert versions.group_by("customer_id").agg(pl.col("is_current").sum())["is_current"].eq(1).all()
    joined = scores.join(versions, on="customer_id", suffix="_dim").filter(
        (pl.col("valid_from") <= pl.col("as_of_date"))
        & (pl.col("valid_to").is_null() | (pl.col("as_of_date") < pl.col("valid_to")))
    )
    assert joined.height == scores.height  # exactly one version per customer per as-of date
    for column in ("pyramid_tier", "rfm_segment", "lifecycle_stage"):
        assert (joined[column] == joined[f"{column}_dim"]).all(), column
    # Versions of one customer tile time without gaps or overlaps.
    tiled = versions.sort("customer_id", "valid_from").with_columns(
        pl.col("valid_from").shift(-1).over("customer_id").alias("next_from"))
    assert (tiled["valid_to"].is_null() == tiled["next_from"].is_null()).all()
    assert tiled.filter(pl.col("valid_to") != pl.col("next_from")).is_empty()


def test_facts_hold_the_latest_version_of_each_key(loaded):
    _, url = loaded
    stg = read_table(url, "SELECT order_id, line_number, batch_date, source_row_number, quantity FROM stg_order_line")
    fct = read_table(url, "SELECT order_id, line_number, batch_date, quantity FROM fct_order_line")
    latest = stg.sort("batch_date", "source_row_number").unique(["order_id", "line_number"], keep="last")
    assert fct.height == latest.height
    assert fct.sort("order_id", "line_number").equals(latest.drop("source_row_number").sort("order_id", "line_number"))
    orders = read_table(url, "SELECT count(*) AS n FROM fct_order")["n"][0]
    assert orders == fct["order_id"].n_unique()


def test_rerunning_a_date_three_times_changes_no_table(loaded, airflow_home):
    home, url = loaded
    first = checksums(url)
    for _ in range(2):
        run_crm(home, airflow_home, url, "run", "--ds", SAMPLE_END.isoformat())
        assert checksums(url) == first


RELOAD = """
import sys
from datetime import date
import polars as pl
from pipeline.settings import load_settings
from pipeline.tasks import load_day

day = date.fromisoformat(sys.argv[1])
settings = load_settings()
staged = []
for kind in ("customers", "orders", "surveys", "complaints"):
    # The batches the run of that day staged, as its stage task reported them.
    recon = pl.read_parquet(settings.lake("reconciliation") / kind / f"run_date={day.isoformat()}" / "part.parquet")
    staged.append({"kind": kind, "batch_dates": sorted(d.isoformat() for d in recon["batch_date"])})
load_day(day, staged, {"path": str(settings.lake("scores") / f"as_of_date={day.isoformat()}")}, settings)
"""


def test_a_load_killed_anywhere_leaves_the_previous_state(loaded, request, tmp_path, sample_dir, airflow_home):
    """A warehouse loaded up to MID; the load of SAMPLE_END is SIGKILLed just before commit (in a
    real crm run), then mid-COPY and between tables (the load step alone, from the lake that run
    left). After each kill the warehouse is exactly as it was; the load let through gives exactly
    the tables the uninterrupted runs gave."""
    home = tmp_path / "crm"
    home.mkdir()
    (home / "sample").symlink_to(sample_dir)
    url = (f"duckdb:///{home / 'warehouse.duckdb'}" if loaded[1].startswith("duckdb")
           else request.getfixturevalue("pg_cluster").new_database("killed"))
    assert set(POINTS) == {"load:before_commit", "load:mid_copy", "load:between_tables"}
    run_crm(home, airflow_home, url, "run", "--ds", MID.isoformat())
    before = checksums(url)
    killed = run_crm(home, airflow_home, url, "run", "--ds", SAMPLE_END.isoformat(),
                     extra_env={"CRM_FAILPOINT": "load:before_commit"}, check=False)
    assert killed.returncode == -9, (killed.returncode, killed.stdout[-2000:], killed.stderr[-2000:])
    assert checksums(url) == before
    for point in ("load:mid_copy", "load:between_tables"):
        proc = reload(home, url, [SAMPLE_END], failpoint=point)[0]
        assert proc.returncode == -9, (point, proc.returncode, proc.stdout.read()[-3000:])
        assert checksums(url) == before, point
    assert [p.returncode for p in reload(home, url, [SAMPLE_END])] == [0]
    assert checksums(url) == checksums(loaded[1])


def test_bi_role_reads_marts_and_facts_but_not_pii(loaded):
    _, url = loaded
    if not url.startswith("postgresql"):
        pytest.skip("database roles are PostgreSQL's; the embedded warehouse is a local file")
    login, password = f"bi_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    admin = make_engine(url)
    with admin.begin() as conn:
        # A DBA's setup for one BI login; the role crm_bi itself comes with the warehouse upgrade.
        conn.exec_driver_sql(f"CREATE ROLE {login} LOGIN PASSWORD '{password}' IN ROLE crm_bi")
    admin.dispose()
    bi = make_engine(sa.engine.make_url(url).set(username=login, password=password).render_as_string(hide_password=False))
    readable = [n for n in warehouse_objects() if not n.startswith("restricted.")]
    try:
        with bi.connect() as conn:
            leaks = [(obj, column) for obj in readable for column in _pii_shaped_columns(conn, obj)]
        with bi.connect() as conn, pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
            conn.execute(sa.text("SELECT * FROM restricted.customer_pii")).fetchall()
    finally:
        bi.dispose()
    assert not leaks


def _pii_shaped_columns(conn: sa.Connection, obj: str) -> list[str]:
    """The text columns of obj holding anything shaped like an email address or a phone number."""
    result = conn.execute(sa.select(sa.literal_column("*")).select_from(table_ref(obj)))
    frame = pl.DataFrame([tuple(r) for r in result], schema=list(result.keys()), orient="row", infer_schema_length=None)
    return [column for column in frame.columns if frame[column].dtype == pl.String
            and (frame[column].str.contains(EMAIL).any() or frame[column].str.contains(PHONE).any())]


def reload(home: Path, url: str, days: list[date], failpoint: str | None = None) -> list[subprocess.Popen]:
    """Runs the load step for each day at the same time, each in its own process, and waits for them."""
    env = os.environ | {"CRM_HOME": str(home), "CRM_WAREHOUSE_URL": url, "CRM_PII_SALT": "test-salt"}
    if failpoint:
        env["CRM_FAILPOINT"] = failpoint
    procs = [subprocess.Popen([sys.executable, "-c", RELOAD, day.isoformat()], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for day in days]
    for proc in procs:
        proc.wait(timeout=600)
    return procs


def test_concurrent_loads_neither_corrupt_nor_double(loaded):
    """The load step of two runs at once, from the lake the runs left: different dates side by side,
    then the same date twice. Reloading the same inputs must give back exactly the same tables."""
    home, url = loaded
    before = checksums(url)
    for days in ([MID, SAMPLE_END], [SAMPLE_END, SAMPLE_END]):
        procs = reload(home, url, days)
        assert [p.returncode for p in procs] == [0, 0], "\n".join(p.stdout.read()[-3000:] for p in procs)
        assert checksums(url) == before, days
