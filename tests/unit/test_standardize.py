from datetime import datetime, timezone

import polars as pl
import pytest

from pipeline import standardize as std
from pipeline.schemas import SCHEMAS


def raw_orders(**overrides) -> pl.DataFrame:
    row = {"order_id": "O1", "line_number": "1", "customer_id": "C1", "ordered_at": "2025-03-01T14:03:22+08:00",
           "product_id": "P1", "category": "books", "quantity": "2", "unit_price": "10.50", "unit_cost": "6",
           "currency": "CNY", "channel": "web", "status": "completed", "customer_country": "CN"}
    rows = [row | overrides]
    return pl.DataFrame(rows).with_columns(pl.lit(1, pl.Int64).alias("_row_number"), pl.lit("2025-03-01").alias("_batch_date"))


def test_cast_types_and_converts_offsets_to_utc():
    good, bad = std.cast_to_schema(raw_orders(), SCHEMAS["orders"].columns)
    assert bad.height == 0
    assert good["ordered_at"][0] == datetime(2025, 3, 1, 6, 3, 22, tzinfo=timezone.utc)
    assert good["quantity"].dtype == pl.Int32 and good["unit_price"][0] == 10.5


@pytest.mark.parametrize("column,value", [("unit_price", "N/A"), ("quantity", "two"), ("ordered_at", "31/02/2025")])
def test_unparsable_values_are_returned_with_the_column_named(column, value):
    good, bad = std.cast_to_schema(raw_orders(**{column: value}), SCHEMAS["orders"].columns)
    assert good.height == 0
    assert bad["reason_detail"][0].startswith(f"{column}: not a valid")


def test_empty_text_is_missing_not_a_parse_error():
    good, bad = std.cast_to_schema(raw_orders(unit_cost="  "), SCHEMAS["orders"].columns)
    assert bad.height == 0 and good["unit_cost"][0] is None


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="columns \\['status'\\] are missing"):
        std.cast_to_schema(raw_orders().drop("status"), SCHEMAS["orders"].columns)


def test_email_is_lowercased_and_invalid_ones_flagged():
    out = std.normalize_email(pl.DataFrame({"email": [" Li.Wei@Example.CN ", "not-an-email", None]}))
    assert out["email"].to_list() == ["li.wei@example.cn", None, None]
    assert out["is_email_valid"].to_list() == [True, False, False]


def test_phone_to_e164_using_the_country():
    frame = pl.DataFrame({"phone": ["138 1234 5678", "+86-139-0000-1111", "(212) 555-0142", "12345", None],
                          "country": ["CN", "CN", "US", "CN", "US"]})
    out = std.normalize_phone(frame)
    assert out["phone"].to_list() == ["+8613812345678", "+8613900001111", "+12125550142", None, None]
    assert out["is_phone_valid"].to_list() == [True, True, True, False, False]


def test_nfkc_folds_full_width_and_keeps_chinese():
    out = std.normalize_text(pl.DataFrame({"c": ["  ＡＢＣ１２３ 物流很快 "]}), ["c"])
    assert out["c"][0] == "ABC123 物流很快"


def test_currency_conversion_leaves_unknown_currency_null():
    rates = pl.DataFrame({"currency": ["USD", "CNY"], "rate_to_base": [1.0, 0.14]})
    out = std.convert_currency(pl.DataFrame({"currency": ["CNY", "XXX"], "price": [100.0, 5.0]}), rates, ["price"])
    assert out["price_base"][0] == pytest.approx(14.0) and out["price_base"][1] is None


def test_exact_duplicates_keep_the_first_copy():
    frame = pl.DataFrame({"a": [1, 1, 2], "_batch_date": ["d"] * 3, "_row_number": [3, 1, 2]})
    kept, dups = std.split_exact_duplicates(frame, ["a"])
    assert kept["_row_number"].to_list() == [1, 2] and dups["_row_number"].to_list() == [3]


def test_latest_version_of_a_business_key_wins():
    frame = pl.DataFrame({"k": ["x", "x", "y"], "v": [1, 2, 3], "_batch_date": ["2025-01-02", "2025-01-01", "2025-01-01"],
                          "_row_number": [1, 9, 1]})
    latest, older = std.split_superseded(frame, ["k"])
    assert sorted(latest["v"].to_list()) == [1, 3] and older["v"].to_list() == [2]


def test_salted_hash_is_stable_and_salt_dependent():
    values = pl.Series(["a@example.com", None])
    assert std.salted_hash(values, "s1").to_list() == std.salted_hash(values, "s1").to_list()
    assert std.salted_hash(values, "s1")[0] != std.salted_hash(values, "s2")[0]
    assert std.salted_hash(values, "s1")[1] is None


def test_masks_hide_everything_but_a_hint():
    assert std.mask_email(pl.Series(["li.wei@example.cn"]))[0] == "l***@example.cn"
    assert std.mask_phone(pl.Series(["+8613812345678"]))[0] == "+***********78"
