"""Every PostgreSQL load implementation of the benchmark's (e) writes exactly the staged rows it is
given into the real warehouse table, so the rates `make bench` prints are rates of complete loads."""
from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest

from bench import pg_load
from tests.conftest import read_table

pytestmark = [pytest.mark.benchmark, pytest.mark.postgres]
ROWS = 5_000


@pytest.fixture(scope="module")
def staged_lines(tmp_path_factory) -> str:
    """A staged order-lines file with the warehouse table's columns, nulls where they may be."""
    n = ROWS
    frame = pl.DataFrame({
        "order_id": [f"ORD-{i // 3:09d}" for i in range(n)], "line_number": [i % 3 + 1 for i in range(n)],
        "customer_id": [None if i % 50 == 0 else f"C{i % 997:07d}" for i in range(n)],
        "customer_match": [None if i % 50 == 0 else "customer_id" for i in range(n)],
        "ordered_at": [datetime(2025, 12, 1 + i % 30, tzinfo=timezone.utc) for i in range(n)],
        "product_id": [f"P{i % 101:05d}" for i in range(n)], "category": [None if i % 7 == 0 else "书籍 books" for i in range(n)],
        "quantity": [1 + i % 4 for i in range(n)], "unit_price_amount": [9.5 + i % 10 for i in range(n)],
        "unit_cost_amount": [None if i % 5 == 0 else 4.25 for i in range(n)], "currency": ["USD"] * n,
        "line_amount": [float(i % 40) for i in range(n)], "line_cost_amount": [None if i % 5 == 0 else 4.25 for i in range(n)],
        "channel": ["web"] * n, "status": ["completed"] * n, "is_cancelled": [False] * n, "is_returned": [False] * n,
        "customer_country": ["CN"] * n, "batch_date": [date(2025, 12, 1 + i % 30) for i in range(n)],
        "load_id": [f"{i % 30:016x}-202512{1 + i % 30:02d}" for i in range(n)], "source_file": ["orders.csv"] * n,
        "source_row_number": list(range(1, n + 1)),
    }, schema_overrides={"line_number": pl.Int32, "quantity": pl.Int32})
    path = tmp_path_factory.mktemp("pg_load") / "orders_staged.parquet"
    frame.write_parquet(path)
    return str(path)


@pytest.mark.parametrize("impl", pg_load.IMPLS)
def test_each_implementation_loads_every_row(impl, pg_cluster, staged_lines):
    url = pg_cluster.new_database("pgload")
    frame = pg_load.read_frame(staged_lines, None)
    prepared = pg_load.prepare(impl, url, frame)
    pg_load.truncate(url)
    assert pg_load.load(impl, url, prepared) == ROWS
    assert pg_load.count(url) == ROWS
    # Each row once: the row numbers 1..n, none twice, none missing; nulls where they were.
    numbers = read_table(url, f"SELECT count(DISTINCT source_row_number) AS row_numbers, sum(source_row_number) AS total, "
                              f"count(customer_id) AS customers, count(unit_cost_amount) AS costs "
                              f"FROM {pg_load.order_table()}").row(0)
    assert numbers == (ROWS, ROWS * (ROWS + 1) // 2, ROWS - ROWS // 50, ROWS - ROWS // 5)
