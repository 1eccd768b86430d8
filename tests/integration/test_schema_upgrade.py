"""An existing warehouse, as the pre-migration releases created it, upgrades in place: nothing loaded
is lost, and the result has exactly the schema of a fresh warehouse."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.warehouse import ensure_schema, make_engine, statements

LEGACY_SCHEMA = Path(__file__).parents[1] / "fixtures" / "warehouse_pre_alembic.sql"
DAY = date(2025, 12, 30)
AT = datetime(2025, 12, 30, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request, tmp_path) -> tuple[str, str]:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'legacy.duckdb'}", f"duckdb:///{tmp_path / 'fresh.duckdb'}"
    pg = request.getfixturevalue("pg_cluster")
    return pg.new_database("legacy"), pg.new_database("fresh")


def legacy_warehouse(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
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
    engine.dispose()


def columns(url: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    engine = make_engine(url)
    query = ("SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
             "WHERE table_schema IN (current_schema(), 'restricted') ORDER BY table_schema, table_name, ordinal_position")
    with engine.connect() as conn:
        found: dict = {}
        for schema, table, column, dtype in conn.execute(sa.text(query)):
            found.setdefault((schema, table), []).append((column, dtype))
    engine.dispose()
    return found


def test_a_pre_migration_warehouse_upgrades_in_place(urls):
    legacy, fresh = urls
    legacy_warehouse(legacy)
    for url in (legacy, fresh):
        engine = make_engine(url)
        ensure_schema(engine)
        engine.dispose()
    assert columns(legacy) == columns(fresh)
    engine = make_engine(legacy)
    with engine.connect() as conn:
        staged = conn.execute(sa.text("SELECT order_id, quantity, source_file FROM stg_order_line")).all()
        fact = conn.execute(sa.text("SELECT order_id, quantity, ordered_date FROM fct_order_line")).all()
        order = conn.execute(sa.text("SELECT order_id, net_amount FROM fct_order")).all()
        master = conn.execute(sa.text("SELECT customer_id, email_hash, country, batch_date FROM stg_customer")).all()
        pii = conn.execute(sa.text("SELECT customer_id, email FROM restricted.customer_pii")).all()
        revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert staged == [("O1", 2, "o.csv")]
    assert fact == [("O1", 2, DAY)] and order == [("O1", 10.0)]
    assert master == [("C1", "a" * 64, "FR", DAY)]
    assert pii == [("C1", "li@example.cn")]
    assert revision == "0001"


def test_upgrading_twice_changes_nothing(urls):
    _, fresh = urls
    engine = make_engine(fresh)
    ensure_schema(engine)
    before = columns(fresh)
    ensure_schema(engine)
    engine.dispose()
    assert columns(fresh) == before
