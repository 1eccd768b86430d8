"""Standardize + Great Expectations on small literal batches: every row accepted or quarantined with a reason."""
from datetime import datetime, timezone

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
