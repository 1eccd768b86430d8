"""Source mapping: canonical columns from a config, with no Python written by the user."""
from pathlib import Path

import polars as pl
import pytest

from pipeline.extract import SourceReadError, decode, read_file
from pipeline.mapping import SchemaDriftError, apply_mapping, check_columns
from pipeline.sources import load_sources


def source(tmp_path: Path, body: str, kind: str = "orders"):
    path = tmp_path / "s.yml"
    path.write_text(f"sources:\n  {kind}:\n" + body, encoding="utf-8")
    return load_sources(path)[kind]


RETAIL = pl.DataFrame({
    "InvoiceNo": ["536365", "536365", "C536379", "536380"], "Qty": ["6", "2", "-1", "3"], "Price": ["2.55", "3", "1", " "],
    "When": ["2010-12-01 08:26:00"] * 4, "CustomerID": ["17850", "17850", None, "-"],
})


def test_mapping_renames_derives_and_marks_cancellations(tmp_path):
    src = source(tmp_path, (
        "    path: r.csv\n    currency: gbp\n    missing_values: ['-']\n"
        "    columns: {order_id: InvoiceNo, quantity: Qty, unit_price: Price, ordered_at: When, customer_id: CustomerID}\n"
        "    derive: {line_number: 'ROW_NUMBER() OVER (PARTITION BY \"InvoiceNo\")', channel: \"'online'\"}\n"
        "    cancellations: {id_prefix: {column: InvoiceNo, prefix: C}}\n"))
    out = apply_mapping(RETAIL.with_columns(pl.lit(1).alias("_row_number")), src)
    assert out["line_number"].to_list() == ["1", "2", "1", "1"]
    assert out["status"].to_list() == ["completed", "completed", "cancelled", "completed"]
    assert out["currency"].to_list() == ["GBP"] * 4 and out["channel"].to_list() == ["online"] * 4
    assert out["customer_id"].to_list() == ["17850", "17850", None, None]  # '-' is a missing-value marker
    assert out["category"].to_list() == [None] * 4  # optional and absent
    assert "_row_number" in out.columns


def test_status_values_map_onto_the_canonical_statuses(tmp_path):
    src = source(tmp_path, "    path: r.csv\n    cancellations:\n      status: {column: State, returned: [RMA, Refunded], completed: [Paid]}\n")
    frame = pl.DataFrame({"State": ["Paid", "refunded", "RMA", "lost", None]})
    assert apply_mapping(frame, src)["status"].to_list() == ["completed", "returned", "returned", "lost", "completed"]


def test_drift_names_the_file_and_the_near_column(tmp_path):
    src = source(tmp_path, "    path: r.csv\n    columns: {order_id: InvoiceNo}\n")
    with pytest.raises(SchemaDriftError, match=r"export\.csv lacks 'InvoiceNo' \(order_id\), did you mean 'Invoice No'"):
        check_columns(pl.DataFrame({"Invoice No": ["1"]}), src, "export.csv")


def test_auto_encoding_and_a_clear_error_for_a_wrong_one():
    text = "名称,数量\n苹果,1\n"
    assert decode(text.encode("gb18030"), "auto", "f.csv") == text
    assert decode(b"\xef\xbb\xbf" + text.encode(), "auto", "f.csv") == text
    assert decode(b"\xef\xbb\xbf" + text.encode(), "utf-8", "f.csv") == text
    with pytest.raises(SourceReadError, match="f.csv: not valid utf-8.*set `encoding: gb18030`"):
        decode(text.encode("gb18030"), "utf-8", "f.csv")


def test_excel_exports_are_read_as_text(tmp_path):
    pl.DataFrame({"order_id": ["A1"], "quantity": [3], "unit_price": [2.5], "note": ["退货"]}).write_excel(tmp_path / "o.xlsx")
    src = source(tmp_path, "    path: o.xlsx\n    format: excel\n")
    frame, _ = read_file(src, tmp_path / "o.xlsx")
    assert frame.row(0) == ("A1", "3", "2.5", "退货")
