"""An existing warehouse, as the pre-migration releases or release 0001 created it, upgrades in place:
nothing loaded is lost, and the result has exactly the schema of a fresh warehouse."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.warehouse import connected, statements

FIXTURES = Path(__file__).parents[1] / "fixtures"
LEGACY_SCHEMA = FIXTURES / "warehouse_pre_alembic.sql"
RELEASE_0001_SCHEMA = FIXTURES / "warehouse_0001.sql"
HEAD = "0003"
DAY = date(2025, 12, 30)
AT = datetime(2025, 12, 30, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request, tmp_path) -> tuple[str, str]:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'legacy.duckdb'}", f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    pg = request.getfixturevalue("pg_cluster")
    return pg.new_database("legacy"), pg.new_database("fresh")


def upgrade(*urls: str) -> None:
    for url in urls:
        with connected(url):
            pass


def legacy_warehouse(url: str) -> None:
    with connected(url, transaction=True, upgrade=False) as conn:
        for statement in statements(LEGACY_SCHEMA.read_text(encoding="utf-8")):
            conn.exec_driver_sql(statement)
        rows = {
            "fct_order_line": dict(order_id="O1", line_number=1, customer_id="C1", customer_match="customer_id",
                                   ordered_at=AT, product_id="P1", category="toys", quantity=2, unit_price_amount=5.0,
                                   currency="EUR", line_amount=10.0, status="completed", is_cancelled=False,
                                   is_returned=False, batch_date=DAY, load_id="L1", source_file="o.csv",
                                   source_row_number=1),
            "dim_customer": dict(customer_id="C1", email_hash="a" * 64, country="FR", is_in_master=True, batch_date=DAY,
                                 load_id="L0"),
            "customer_pii": dict(customer_id="C1", full_name="Li Wei", email="li@example.cn", batch_date=DAY),
            "etl_batch": dict(source="orders", batch_date=DAY, load_id="L1", run_date=DAY, raw_rows=1, accepted_rows=1,
                              quarantined_rows=0),
        }
        for table, row in rows.items():
            conn.execute(sa.insert(sa.table(table, *(sa.column(c) for c in row))), row)


def columns(url: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    query = ("SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
             "WHERE table_schema IN (current_schema(), 'restricted') ORDER BY table_schema, table_name, ordinal_position")
    with connected(url, upgrade=False) as conn:
        found: dict = {}
        for schema, table, column, dtype in conn.execute(sa.text(query)):
            found.setdefault((schema, table), []).append((column, dtype))
    return found


def test_a_pre_migration_warehouse_upgrades_in_place(urls):
    legacy, fresh = urls
    legacy_warehouse(legacy)
    upgrade(legacy, fresh)
    assert columns(legacy) == columns(fresh)
    with connected(legacy, upgrade=False) as conn:
        staged = conn.execute(sa.text("SELECT order_id, quantity, source_file FROM stg_order_line")).all()
        fact = conn.execute(sa.text("SELECT order_id, quantity, ordered_date FROM fct_order_line")).all()
        order = conn.execute(sa.text("SELECT order_id, net_amount FROM fct_order")).all()
        master = conn.execute(sa.text("SELECT customer_id, email_hash, country, batch_date FROM stg_customer")).all()
        pii = conn.execute(sa.text("SELECT customer_id, email FROM restricted.customer_pii")).all()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert staged == [("O1", 2, "o.csv")]
    assert fact == [("O1", 2, DAY)] and order == [("O1", 10.0)]
    assert master == [("C1", "a" * 64, "FR", DAY)]
    assert pii == [("C1", "li@example.cn")]
    assert revision == HEAD


def release_0001_warehouse(url: str) -> None:
    """The tables of release 0001 at Alembic revision 0001, holding a run's worth of rows."""
    with connected(url, transaction=True, upgrade=False) as conn:
        for statement in statements(RELEASE_0001_SCHEMA.read_text(encoding="utf-8")):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0001')")
        rows = {
            "etl_batch": [dict(source=s, batch_date=DAY, load_id=f"L{i}", run_date=DAY, raw_rows=1, accepted_rows=1,
                               quarantined_rows=0) for i, s in enumerate(("orders", "surveys"))],
            "kpi_alert": [dict(as_of_date=DAY, metric="nps", value=-5.0, threshold=0.0, bound="min", severity="warning",
                               message="nps = -5 is below the minimum 0")],
            "fct_order": [dict(order_id="O1", customer_id="C1", ordered_at=AT, ordered_date=DAY, currency="EUR",
                               line_count=1, item_quantity=2, gross_amount=10.0, net_amount=10.0, is_cancelled=False,
                               has_return=False, batch_date=DAY)],
        }
        for table, table_rows in rows.items():
            columns = [c for c in table_rows[0]]
            conn.execute(sa.insert(sa.table(table, *(sa.column(c) for c in columns))), table_rows)


def test_a_release_0001_warehouse_upgrades_in_place(urls):
    old, fresh = urls
    release_0001_warehouse(old)
    upgrade(old, fresh)
    assert columns(old) == columns(fresh)
    with connected(old, upgrade=False) as conn:
        alerts = conn.execute(sa.text("SELECT metric, threshold_kind, value, bound FROM kpi_alert")).all()
        runs = conn.execute(sa.text("SELECT run_date, loaded_batches, scored_customers FROM etl_run")).all()
        orders = conn.execute(sa.text("SELECT order_id, net_amount FROM fct_order")).all()
        keys = conn.execute(sa.text("SELECT count(*) FROM information_schema.table_constraints WHERE constraint_type = "
                                    "'PRIMARY KEY' AND table_name IN ('fct_order', 'fct_order_line', 'fct_survey_answer')"
                                    )).scalar_one()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    assert alerts == [("nps", "fixed", -5.0, "min")]
    assert runs == [(DAY, 2, 0)]  # loaded before etl_run existed: counts as done for crm backfill
    assert orders == [("O1", 10.0)]
    assert keys == 0
    assert revision == HEAD


def test_upgrading_twice_changes_nothing(urls):
    _, fresh = urls
    upgrade(fresh)
    before = columns(fresh)
    upgrade(fresh)
    assert columns(fresh) == before
