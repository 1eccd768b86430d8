"""The loader on a real embedded DuckDB file: replace semantics and all-or-nothing transactions."""
from datetime import date

import polars as pl
import pytest
import sqlalchemy as sa

from pipeline.warehouse import ensure_schema, make_engine
from pipeline.warehouse.loader import replace_partitions


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"duckdb:///{tmp_path / 'w.duckdb'}")
    ensure_schema(engine)
    yield engine
    engine.dispose()


def pyramid(as_of: date, customers: int) -> pl.DataFrame:
    return pl.DataFrame({"as_of_date": [as_of], "pyramid_tier": ["vip"], "tier_rank": [1], "customers": [customers],
                         "revenue_amount": [1.0], "revenue_share": [1.0]})


def count(engine, where_date: date) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT customers FROM customer_pyramid_daily WHERE as_of_date = :d"), {"d": where_date}).scalars().all()


def test_replacing_a_partition_twice_keeps_one_copy_and_leaves_others(engine):
    d1, d2 = date(2025, 1, 1), date(2025, 1, 2)
    with engine.begin() as conn:
        replace_partitions(conn, "customer_pyramid_daily", pyramid(d1, 1), key="as_of_date", keys=[d1])
        replace_partitions(conn, "customer_pyramid_daily", pyramid(d2, 2), key="as_of_date", keys=[d2])
    with engine.begin() as conn:
        replace_partitions(conn, "customer_pyramid_daily", pyramid(d1, 5), key="as_of_date", keys=[d1])
    assert count(engine, d1) == [5] and count(engine, d2) == [2]


def test_a_failure_mid_load_rolls_everything_back(engine):
    d1 = date(2025, 1, 1)
    with engine.begin() as conn:
        replace_partitions(conn, "customer_pyramid_daily", pyramid(d1, 1), key="as_of_date", keys=[d1])
    with pytest.raises(ValueError, match="lacks columns"):
        with engine.begin() as conn:
            replace_partitions(conn, "customer_pyramid_daily", pyramid(d1, 9), key="as_of_date", keys=[d1])
            replace_partitions(conn, "customer_pyramid_daily", pyramid(d1, 9).drop("tier_rank"), key="as_of_date", keys=[d1])
    assert count(engine, d1) == [1]


def test_unknown_table_is_a_clear_error(engine):
    with engine.begin() as conn, pytest.raises(LookupError, match="does not exist"):
        replace_partitions(conn, "no_such_table", pyramid(date(2025, 1, 1), 1), key=None)
