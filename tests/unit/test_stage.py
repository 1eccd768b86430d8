"""Standardize + Great Expectations on small literal batches: every row accepted or quarantined with a reason."""
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from pipeline.sources import SourceConfig
from pipeline.stage import QuarantineThresholdError, StageContext, check_quarantine_share, stage

RATES = pl.DataFrame({"currency": ["USD", "CNY"], "rate_to_base": [1.0, 0.14]})
END = datetime(2026, 1, 1, tzinfo=timezone.utc)
CTX = StageContext(SourceConfig("orders", path_template="o.csv"), END, RATES, pl.Series(["C1", "C2"]), None, "salt")


def landed(rows: list[dict]) -> pl.DataFrame:
    base = {"order_id": "O1", "line_number": "1", "customer_id": "C1", "ordered_at": "2025-12-01T10:00:00+08:00",
            "product_id": "P1", "category": "books", "quantity": "1", "unit_price": "10", "unit_cost": "5",
            "currency": "USD", "channel": "web", "status": "completed"}
    frame = pl.DataFrame([base | r for r in rows])
    return frame.with_columns(
        pl.lit("orders_2025-12-01.csv").alias("_source_file"), pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row_number"),
        pl.lit("L1").alias("_load_id"), pl.lit("2025-12-01").alias("_batch_date"),
    )


def test_each_defect_is_quarantined_with_its_reason():
    rows = [
        {"order_id": "O1"},
        {"order_id": "O2", "quantity": "-3"},  # negative, but not marked as a cancellation or return
        {"order_id": "O3", "customer_id": "C404"},
        {"order_id": "O4", "unit_price": "N/A"},
        {"order_id": "O5", "currency": "XXX"},
        {"order_id": "O6", "ordered_at": "2026-02-01T00:00:00+00:00"},
        {"order_id": "O7", "status": "lost"},
        {"order_id": "O1"},  # exact copy of the first row
    ]
    staged = stage("orders", landed(rows), CTX)
    accepted, quarantine, results = staged.accepted, staged.quarantine, staged.results
    assert accepted["order_id"].to_list() == ["O1"]
    reasons = dict(quarantine.select("source_row_number", "reason_code").rows())
    assert reasons == {2: "negative_quantity_without_return", 3: "unknown_customer", 4: "parse_error", 5: "unknown_currency",
                       6: "dated_after_interval", 7: "not_in_accepted_values", 8: "exact_duplicate"}
    assert accepted.height + quarantine.height == len(rows)
    assert quarantine["raw_record"].str.contains('"order_id":').all()
    assert not results.filter(pl.col("column_name") == "is_quantity_sign_consistent")["is_success"][0]


def test_accepted_rows_are_warehouse_ready():
    staged = stage("orders", landed([{"currency": "CNY", "quantity": "2", "unit_price": "100"}]), CTX)
    accepted, quarantine = staged.accepted, staged.quarantine
    row = accepted.row(0, named=True)
    assert quarantine.height == 0
    assert row["line_amount"] == pytest.approx(28.0) and row["unit_price_amount"] == 100.0
    assert row["ordered_at"] == datetime(2025, 12, 1, 2, tzinfo=timezone.utc)
    assert row["source_row_number"] == 1 and str(row["batch_date"]) == "2025-12-01"
    assert not {"_rid", "is_known_customer", "has_fx_rate"} & set(accepted.columns)


def test_quarantined_pii_is_masked():
    rows = [{"customer_id": "C9", "full_name": "李伟", "email": "Li.Wei@example.cn", "phone": "13812345678", "country": "CN",
             "city": "上海", "signed_up_at": "2030-01-01T00:00:00+08:00"}]
    frame = pl.DataFrame(rows).with_columns(
        pl.lit("c.csv").alias("_source_file"), pl.lit(1, pl.Int64).alias("_row_number"), pl.lit("L").alias("_load_id"),
        pl.lit("2025-12-01").alias("_batch_date"))
    ctx = StageContext(SourceConfig("customers", path_template="c.csv"), END, RATES, None, None, "salt")
    quarantine = stage("customers", frame, ctx).quarantine
    record = quarantine["raw_record"][0]
    assert quarantine["reason_code"][0] == "dated_after_interval"
    assert "Li.Wei@" not in record and "13812345678" not in record and "L***@example.cn" in record


def test_too_much_quarantine_fails_the_batch_naming_the_reasons():
    q = pl.DataFrame({"reason_code": ["unknown_customer"] * 3 + ["parse_error"]})
    check_quarantine_share("orders", 100, q, 0.05)
    with pytest.raises(QuarantineThresholdError, match=r"orders: 4 of 10 rows.*unknown_customer \(3\)"):
        check_quarantine_share("orders", 10, q, 0.05)


def _landed_run(tmp_path, days: dict[str, list[str]], extra: str = "") -> tuple:
    """Extracts one CSV per day; returns (source, what extract hands the stage task)."""
    from datetime import date

    from pipeline.extract import extract
    from pipeline.sources import load_sources

    (tmp_path / "in").mkdir()
    header = "order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,status"
    for day, rows in days.items():
        (tmp_path / "in" / f"orders_{day}.csv").write_text("\n".join([header, *rows]) + "\n")
    (tmp_path / "sources.yml").write_text("base_dir: in\nsources:\n  orders:\n    path: orders_{date}.csv\n" + extra)
    source = load_sources(tmp_path / "sources.yml")["orders"]
    return source, extract(source, None, date.fromisoformat(max(days)), tmp_path / "landing")


def _stage_into(tmp_path, name: str, source, extracted: dict, cells: int | None):
    from pipeline.stage import stage_landed

    ctx = StageContext(source, END, RATES, pl.Series(["C1", "C2"]), None, "salt")
    lakes = {k: tmp_path / name / k for k in ("accepted", "quarantine", "answers")}
    outcome = stage_landed("orders", extracted, ctx, lakes, cells=cells)
    files = {str(p.relative_to(tmp_path / name)): pl.read_parquet(p) for p in sorted((tmp_path / name).rglob("*.parquet"))}
    return outcome, files


def test_staging_in_chunks_gives_what_staging_at_once_gives(tmp_path):
    """One day per chunk, latest first, against one chunk: duplicates, later versions and a derived
    window (ROW_NUMBER over an order spanning days) all reach across chunks."""
    row = "O{o},{n},C1,2025-12-0{d}T10:00:00Z,P1,{q},10,USD,completed"
    days = {
        "2025-12-01": [row.format(o=1, n=1, d=1, q=1), row.format(o=2, n=1, d=1, q=1), row.format(o=3, n=1, d=1, q=1)],
        "2025-12-02": [row.format(o=2, n=1, d=2, q=5), row.format(o=1, n=1, d=1, q=1), "O4,1,C404,2025-12-02T10:00:00Z,P1,1,10,USD,completed"],
        "2025-12-03": [row.format(o=2, n=1, d=3, q=7), row.format(o=3, n=1, d=1, q=1), "O5,x,C1,2025-12-03T10:00:00Z,P1,1,10,USD,completed"],
    }
    source, extracted = _landed_run(tmp_path, days, "    max_quarantine_share: 1\n")
    whole, whole_files = _stage_into(tmp_path, "whole", source, extracted, None)
    chunked, chunked_files = _stage_into(tmp_path, "chunked", source, extracted, 1)
    assert whole_files.keys() == chunked_files.keys() and all(whole_files[k].equals(chunked_files[k]) for k in whole_files)
    assert whole.reconciliation.equals(chunked.reconciliation) and whole.results.equals(chunked.results)
    reasons = pl.concat([f for k, f in whole_files.items() if k.startswith("quarantine")])
    assert sorted(zip(reasons["batch_date"].cast(pl.String), reasons["reason_code"])) == [
        ("2025-12-01", "superseded_version"),  # O2 again on the 2nd and the 3rd
        ("2025-12-02", "exact_duplicate"), ("2025-12-02", "superseded_version"), ("2025-12-02", "unknown_customer"),
        ("2025-12-03", "exact_duplicate"), ("2025-12-03", "parse_error"),
    ]
    assert (whole.raw, whole.accepted, whole.quarantined) == (9, 3, 6)


def test_derived_fields_see_the_whole_run_when_staged_in_chunks(tmp_path):
    row = "{o},{n},C1,2025-12-0{d}T10:00:00Z,P1,1,10,USD,completed"
    days = {"2025-12-01": [row.format(o="A", n="", d=1)], "2025-12-02": [row.format(o="A", n="", d=2)]}
    derive = "    derive: {line_number: 'ROW_NUMBER() OVER (PARTITION BY \"order_id\")'}\n"
    source, extracted = _landed_run(tmp_path, days, derive)
    _, whole_files = _stage_into(tmp_path, "whole", source, extracted, None)
    _, chunked_files = _stage_into(tmp_path, "chunked", source, extracted, 1)
    lines = pl.concat([f for k, f in chunked_files.items() if k.startswith("accepted")])["line_number"].to_list()
    assert lines == [1, 2]  # one chunk per day, yet numbered across both
    assert all(whole_files[k].equals(chunked_files[k]) for k in whole_files)


def test_a_run_that_fails_its_checks_leaves_the_lakes_as_they_were(tmp_path):
    row = "O{o},1,C404,2025-12-01T10:00:00Z,P1,1,10,USD,completed"
    source, extracted = _landed_run(tmp_path, {"2025-12-01": [row.format(o=i) for i in range(3)]})
    stale = tmp_path / "run" / "accepted" / "batch_date=2025-12-01" / "part.parquet"
    stale.parent.mkdir(parents=True)
    pl.DataFrame({"x": [1]}).write_parquet(stale)
    with pytest.raises(QuarantineThresholdError, match="unknown_customer"):
        _stage_into(tmp_path, "run", source, extracted, None)
    assert [p.name for p in (tmp_path / "run").rglob("*") if p.is_file()] == ["part.parquet"]
    assert pl.read_parquet(stale).columns == ["x"]


class _FirstLetterKeys:
    """KnownKeys whose hash is a string's first letter: collisions on purpose."""

    @staticmethod
    def hash(values: pl.Series) -> np.ndarray:
        return np.array([ord(v[0]) if v else 0 for v in values.to_list()], dtype=np.uint64)


def test_known_keys_compare_the_strings_when_hashes_meet():
    from pipeline.stage import KnownKeys

    colliding = type("Colliding", (_FirstLetterKeys, KnownKeys), {})
    for keys in (KnownKeys, colliding):
        known = keys(pl.Series(["ab", "aa", "b", None, "ab"]))
        probe = pl.Series(["aa", "ab", "ac", "b", "bb", None, "c", ""])
        assert known.contains(probe).tolist() == [True, True, False, True, False, False, False, False], keys
    assert not KnownKeys(pl.Series([], dtype=pl.String)).contains(pl.Series(["a", None])).any()


def test_later_keys_compare_the_key_itself_when_hashes_meet():
    """Hashes forged to collide: C shares A's hash but is not A; B is held by two later chunks."""
    from pipeline.stage import LaterKeys

    later = LaterKeys(["order_id", "line_number"])
    later.add(pl.DataFrame({"order_id": ["A", "B"], "line_number": [1, 1]}), np.array([5, 7], dtype=np.uint64))
    later.add(pl.DataFrame({"order_id": ["B", None], "line_number": [1, 2]}), np.array([7, 3], dtype=np.uint64))
    earlier = pl.DataFrame({"order_id": ["C", "B", "B", None, "D"], "line_number": [1, 1, 2, 2, 1]})
    held = later.held(earlier, np.array([5, 7, 7, 3, 9], dtype=np.uint64))
    assert held.tolist() == [False, True, False, True, False]  # a null key part matches a null, as in the join
    assert later.hashes.tolist() == [3, 5, 7, 7]
