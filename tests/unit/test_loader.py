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


def duckdb_memory_limit_of(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT current_setting('memory_limit')").scalar()
    finally:
        engine.dispose()


def test_the_embedded_warehouse_spills_past_its_memory_limit(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'w.duckdb'}"
    monkeypatch.delenv("CRM_DUCKDB_MEMORY_LIMIT", raising=False)
    half = duckdb_memory_limit_of(url)
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "100%")
    assert duckdb_memory_limit_of(url) != half
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "3GB")
    assert duckdb_memory_limit_of(url) == "2.7 GiB"  # DuckDB's GB are 10^9 bytes
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="CRM_DUCKDB_MEMORY_LIMIT 'lots' is not a size"):
        duckdb_memory_limit_of(url)


# --- bulk paths on both warehouses: binary COPY (PostgreSQL), Parquet files, the fact rebuilds ----------

from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

from pipeline.warehouse import run_script  # noqa: E402
from pipeline.warehouse.loader import replace_partitions_from_parquet  # noqa: E402

UTC = timezone.utc
D1, D2 = date(2025, 3, 1), date(2025, 3, 2)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_engine(request, tmp_path):
    url = (f"duckdb:///{tmp_path / 'w.duckdb'}" if request.param == "duckdb"
           else request.getfixturevalue("pg_cluster").new_database("loader"))
    engine = make_engine(url)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def every_type_table(conn) -> None:
    conn.exec_driver_sql("CREATE TABLE every_type (s VARCHAR, i2 SMALLINT, i4 INTEGER, i8 BIGINT, "
                         "f8 DOUBLE PRECISION, f4 REAL, b BOOLEAN, d DATE, ts TIMESTAMPTZ, tn TIMESTAMP)")


EVERY_TYPE = pl.DataFrame({
    "s": ["plain", None, "名前 émoji 🎉", "", "a,b\n\"q\" \\N"],
    "i2": [1, -32768, None, 32767, 0],
    "i4": [1, None, -3, 2**31 - 1, -(2**31)],  # Int64 in the frame, INTEGER in the table
    "i8": [None, 2**62, -1, 0, 7],
    "f8": [1.5, None, float("inf"), -0.0, 1e-300],
    "f4": [1.25, 2.0, None, 3.0, -1.5],
    "b": [True, False, None, True, False],
    "d": [date(2025, 1, 1), date(1999, 12, 31), None, date(2000, 1, 1), date(1970, 1, 1)],
    "ts": [datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=UTC), None, datetime(1990, 5, 6, tzinfo=UTC),
           datetime(2000, 1, 1, tzinfo=UTC), datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC)],
    "tn": [datetime(2025, 1, 1, 12), None, datetime(1969, 7, 20, 20, 17), datetime(2030, 1, 1), datetime(2000, 1, 1)],
}, schema_overrides={"i2": pl.Int16, "f4": pl.Float32})


@pytest.mark.postgres
def test_binary_copy_round_trips_every_type_nulls_and_odd_text(pg_cluster):
    """What the binary encoder sends reads back as the frame held it: widths, epochs, NULLs, UTF-8,
    and text that CSV would have to quote or could mistake for NULL."""
    engine = make_engine(pg_cluster.new_database("binary"))
    with engine.begin() as conn:
        every_type_table(conn)
        assert replace_partitions(conn, "every_type", EVERY_TYPE, key=None) == EVERY_TYPE.height
        rows = conn.exec_driver_sql("SELECT * FROM every_type").all()
    engine.dispose()
    back = pl.DataFrame([tuple(r) for r in rows], schema=EVERY_TYPE.columns, orient="row")
    expected = EVERY_TYPE.with_columns(pl.col(pl.Float32).cast(pl.Float64))
    assert sorted(back.rows(), key=repr) == sorted(expected.rows(), key=repr)


@pytest.mark.postgres
def test_binary_copy_rejects_a_value_its_column_cannot_hold(pg_cluster):
    """An Int64 beyond INTEGER fails with the column named, before the server sees a byte; the
    transaction keeps nothing of that load."""
    engine = make_engine(pg_cluster.new_database("binary"))
    with engine.connect() as conn:
        every_type_table(conn)
        conn.commit()
        with pytest.raises(ValueError, match="i4"):
            with conn.begin():
                replace_partitions(conn, "every_type", EVERY_TYPE.with_columns(pl.lit(2**40).alias("i4")), key=None)
        assert conn.exec_driver_sql("SELECT count(*) FROM every_type").scalar() == 0
    engine.dispose()


def write_partitions(root: Path, frames: dict[date, pl.DataFrame]) -> list[Path]:
    files = []
    for day, frame in frames.items():
        path = root / f"batch_date={day.isoformat()}" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path)
        files.append(path)
    return files


def pyramid_rows(day: date, tiers: list[str], customers: int) -> pl.DataFrame:
    return pl.DataFrame({"as_of_date": [day] * len(tiers), "pyramid_tier": tiers, "tier_rank": list(range(len(tiers))),
                         "customers": [customers] * len(tiers), "revenue_amount": [1.0] * len(tiers),
                         "revenue_share": [0.5] * len(tiers)})


def test_parquet_partitions_replace_exactly_their_keys(any_engine, tmp_path):
    """From files: the partitions named are replaced (also by a group of files at a time, as
    PostgreSQL reads them), the others kept, no file deletes them, and a file lacking a column
    is refused before anything is deleted."""
    table, key = "customer_pyramid_daily", "as_of_date"
    first = write_partitions(tmp_path / "a", {D1: pyramid_rows(D1, ["vip", "key"], 1),
                                              D2: pyramid_rows(D2, ["vip"], 2)})
    with any_engine.begin() as conn:
        assert replace_partitions_from_parquet(conn, table, first, key=key, keys=[D1, D2], group_rows=2) == 3
    again = write_partitions(tmp_path / "b", {D1: pyramid_rows(D1, ["small"], 9)})
    with any_engine.begin() as conn:
        assert replace_partitions_from_parquet(conn, table, again, key=key, keys=[D1]) == 1
    bad = write_partitions(tmp_path / "c", {D2: pyramid_rows(D2, ["vip"], 5).drop("tier_rank")})
    with pytest.raises(ValueError, match="lacks columns"), any_engine.begin() as conn:
        replace_partitions_from_parquet(conn, table, bad, key=key, keys=[D2])
    with any_engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT {key}, pyramid_tier, customers FROM {table}").all()
    assert sorted(map(tuple, rows)) == [(D1, "small", 9), (D2, "vip", 2)]
    with any_engine.begin() as conn:
        assert replace_partitions_from_parquet(conn, table, [], key=key, keys=[D2]) == 0
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 1


def response(rid: str, day: date, row: int, satisfaction: float) -> dict:
    return {"response_id": rid, "customer_id": "C1", "responded_at": datetime(2025, 3, 1, 10, tzinfo=UTC),
            "satisfaction_score": satisfaction, "batch_date": day, "load_id": f"L{day.day}",
            "source_file": f"s{day.day}.csv", "source_row_number": row}


def answer(rid: str, day: date, item: str, score: float) -> dict:
    return {"response_id": rid, "item": item, "measure": item.rsplit("_", 1)[0], "raw_value": score, "score": score,
            "batch_date": day}


def insert(conn, table: str, rows: list[dict]) -> None:
    conn.execute(sa.insert(sa.table(table, *(sa.column(c) for c in rows[0]))), rows)


def test_survey_facts_take_the_latest_version_with_exactly_its_answers(any_engine):
    """R1 was re-exported on D2 with one item fewer: the fact holds D2's response and only D2's
    answers. R2 exists once. Rebuilding again changes nothing."""
    with any_engine.begin() as conn:
        insert(conn, "stg_survey_response", [response("R1", D1, 3, 4.0), response("R1", D2, 7, 6.0),
                                             response("R2", D1, 4, 5.0)])
        insert(conn, "stg_survey_answer", [answer("R1", D1, "satisfaction_1", 4.0),
                                           answer("R1", D1, "satisfaction_2", 4.0),
                                           answer("R1", D2, "satisfaction_1", 6.0),
                                           answer("R2", D1, "satisfaction_1", 5.0)])
    for _ in range(2):
        with any_engine.begin() as conn:
            run_script(conn, "transforms/touched_survey_response", dates=[D1, D2])
            run_script(conn, "transforms/fct_survey_response")
        with any_engine.connect() as conn:
            responses = conn.exec_driver_sql("SELECT response_id, batch_date, satisfaction_score, responded_date "
                                             "FROM fct_survey_response").all()
            answers = conn.exec_driver_sql("SELECT response_id, item, score, batch_date, load_id, responded_date "
                                           "FROM fct_survey_answer").all()
        assert sorted(map(tuple, responses)) == [("R1", D2, 6.0, D1), ("R2", D1, 5.0, D1)]
        assert sorted(map(tuple, answers)) == [("R1", "satisfaction_1", 6.0, D2, f"L{D2.day}", D1),
                                               ("R2", "satisfaction_1", 5.0, D1, f"L{D1.day}", D1)]


def test_customer_attributes_reach_every_version_and_leave_the_rest(any_engine):
    """Type 1 on all versions: the latest master record wins; a customer known only from orders gets
    its latest order's country; versions already right are not rewritten (same rows after)."""
    version = {"valid_to": None, "is_current": True, "pyramid_tier": None, "rfm_segment": None,
               "lifecycle_stage": None, "first_seen_date": D2, "is_in_master": False}
    with any_engine.begin() as conn:
        insert(conn, "dim_customer", [
            {**version, "customer_id": "C1", "valid_from": D1, "valid_to": D2, "is_current": False},
            {**version, "customer_id": "C1", "valid_from": D2},
            {**version, "customer_id": "G7", "valid_from": D2}])
        insert(conn, "stg_customer", [
            {"customer_id": "C1", "email_hash": "old", "country": "DE", "city": "Köln", "batch_date": D1,
             "load_id": "L1", "source_file": "c1.csv", "source_row_number": 1},
            {"customer_id": "C1", "email_hash": "new", "country": "FR", "city": "Lyon", "batch_date": D2,
             "load_id": "L2", "source_file": "c2.csv", "source_row_number": 1}])
        order = {"line_number": 1, "customer_id": "G7", "quantity": 1, "unit_price_amount": 1.0, "currency": "EUR",
                 "line_amount": 1.0, "status": "completed", "is_cancelled": False, "is_returned": False,
                 "load_id": "L", "source_file": "o.csv"}
        insert(conn, "stg_order_line", [
            {**order, "order_id": "O1", "ordered_at": datetime(2025, 3, 2, tzinfo=UTC), "customer_country": "PL",
             "batch_date": D2, "source_row_number": 1},
            {**order, "order_id": "O0", "ordered_at": datetime(2025, 3, 1, tzinfo=UTC), "customer_country": "CZ",
             "batch_date": D1, "source_row_number": 2}])
    query = "SELECT customer_id, valid_from, first_seen_date, is_in_master, email_hash, country, city FROM dim_customer"
    for _ in range(2):
        with any_engine.begin() as conn:  # as of a later date: no version starts or ends, the attributes change
            run_script(conn, "transforms/dim_customer", as_of=date(2025, 3, 9))
            run_script(conn, "transforms/dim_customer_attributes")
        with any_engine.connect() as conn:
            rows = sorted(map(tuple, conn.exec_driver_sql(query).all()))
        assert rows == [("C1", D1, D1, True, "new", "FR", "Lyon"), ("C1", D2, D1, True, "new", "FR", "Lyon"),
                        ("G7", D2, D1, False, None, "PL", None)]
