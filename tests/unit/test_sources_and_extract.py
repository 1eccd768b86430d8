from datetime import date

import polars as pl
import pytest

from pipeline.extract import SourceMissingError, content_digest, days_to_extract, extract
from pipeline.sources import SourceConfigError, load_sources

D = date.fromisoformat


def write_config(tmp_path, body: str):
    path = tmp_path / "sources.yml"
    path.write_text(body, encoding="utf-8")
    return path


def test_relative_base_dir_resolves_next_to_the_config(tmp_path):
    cfg = load_sources(write_config(tmp_path, "base_dir: data\nsources:\n  orders:\n    path: o_{date}.csv\n"))
    assert cfg["orders"].path_for(D("2025-01-02")) == tmp_path / "data" / "o_2025-01-02.csv"


@pytest.mark.parametrize("body,message", [
    ("sources:\n  refunds:\n    path: r_{date}.csv\n", "unknown source kinds"),
    ("sources:\n  orders:\n    path: o_{date}_{date}.csv\n", "at most one {date}"),
    ("sources:\n  orders:\n    format: csv\n", "exactly one of `path` or `database`"),
    ("sources:\n  orders:\n    path: o.csv\n    columns: {amount: Total}\n", "not canonical orders columns"),
    ("sources:\n  orders:\n    path: o.csv\n    timezone: Mars/Olympus\n", "unknown time zone"),
    ("sources:\n  orders:\n    path: o.csv\n    derive: {line_number: 'ROW_NUMBER( OVER'}\n", "not a valid SQL expression"),
    ("sources:\n  orders:\n    path: o.csv\n    missing_customer: drop\n", "missing_customer must be one of"),
    ("sources:\n  surveys:\n    path: s.csv\n", "likert.measures is required"),
    ("sources:\n  surveys:\n    path: s.csv\n    likert: {scale: [5, 1], measures: {satisfaction: [q1]}}\n", "low < high"),
    ("sources:\n  orders:\n    path: o.csv\n    colums: {}\n", "unknown keys \\['colums'\\]"),
    ("sources:\n  orders:\n    path: o_{date}.csv\n    format: xml\n", "format must be one of"),
    ("sources:\n  orders:\n    path: o_{date}.csv\n    encoding: latin-9\n", "encoding must be one of"),
    ("base_dir: ${CRM_TEST_UNSET_VARIABLE}\nsources: {}\n", "CRM_TEST_UNSET_VARIABLE is not set"),
])
def test_config_mistakes_are_named(tmp_path, body, message):
    with pytest.raises(SourceConfigError, match=message.replace("{", "\\{").replace("$", "\\$")):
        load_sources(write_config(tmp_path, body))


def test_days_after_the_watermark_and_the_run_date_itself():
    days = [D("2025-01-01"), D("2025-01-02"), D("2025-01-03"), D("2025-01-04")]
    assert days_to_extract(days, None, D("2025-01-03")) == days[:3]
    assert days_to_extract(days, D("2025-01-02"), D("2025-01-04")) == days[2:]
    assert days_to_extract(days, D("2025-01-04"), D("2025-01-02")) == [D("2025-01-02")]  # a re-run
    assert days_to_extract(days, D("2025-01-04"), D("2025-01-05")) == []
    # A run owns what it loaded: its re-run after later runs redoes exactly those days.
    assert days_to_extract(days, D("2025-01-04"), D("2025-01-03"), {D("2025-01-02"), D("2025-01-03")}) == days[1:3]


def test_extract_lands_text_with_lineage(tmp_path):
    (tmp_path / "in").mkdir()
    header = "order_id,line_number,ordered_at,quantity,unit_price,currency\n"
    (tmp_path / "in" / "o_2025-01-01.csv").write_text(header + "甲,1,2025-01-01,1,2,CNY\nB,1,2025-01-01,x,2,CNY\n", encoding="gb18030")
    source = load_sources(write_config(tmp_path, "base_dir: in\nsources:\n  orders:\n    path: o_{date}.csv\n    encoding: gb18030\n"))["orders"]
    out = extract(source, None, D("2025-01-01"), tmp_path / "landing")
    landed = pl.read_parquet(out["path"])
    assert out["rows"] == 2 and landed["quantity"].to_list() == ["1", "x"] and landed["order_id"][0] == "甲"
    assert landed["_row_number"].to_list() == [1, 2] and landed["_source_file"][0] == "o_2025-01-01.csv"
    data = (tmp_path / "in" / "o_2025-01-01.csv").read_bytes()
    assert out["batches"][0]["load_id"] == content_digest("orders", D("2025-01-01"), data)


def test_no_new_day_succeeds_empty_but_a_missing_source_fails(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "o_2025-01-01.csv").write_text("order_id,line_number,ordered_at,quantity,unit_price,currency\n")
    source = load_sources(write_config(tmp_path, "base_dir: in\nsources:\n  orders:\n    path: o_{date}.csv\n"))["orders"]
    assert extract(source, D("2025-01-01"), D("2025-01-02"), tmp_path / "landing")["batches"] == []
    gone = load_sources(write_config(tmp_path, "base_dir: nowhere\nsources:\n  orders:\n    path: o_{date}.csv\n"))["orders"]
    with pytest.raises(SourceMissingError, match="no files match"):
        extract(gone, None, D("2025-01-02"), tmp_path / "landing")


def test_days_with_different_columns_land_as_one_diagonal_file(tmp_path, monkeypatch):
    """Each day file is streamed into the landing file (a row group every two rows here); a day with
    another set of columns starts a new part, and the parts are joined as pl.concat(how="diagonal")."""
    from pipeline import extract as ex

    monkeypatch.setattr(ex, "ROW_GROUP_ROWS", 2)
    (tmp_path / "in").mkdir()
    header = "order_id,line_number,ordered_at,quantity,unit_price,currency"
    days = {"2025-01-01": "", "2025-01-02": f"{header}\nA,1,2025-01-02,1,2,CNY\nB,1,2025-01-02,1,2,CNY\nC,1,2025-01-02,1,2,CNY\n",
            "2025-01-03": f"{header},coupon\nD,1,2025-01-03,1,2,CNY,X1\n", "2025-01-04": f"{header}\nE,1,2025-01-04,1,2,CNY\n"}
    for day, text in days.items():
        (tmp_path / "in" / f"o_{day}.csv").write_text(text)
    source = load_sources(write_config(tmp_path, "base_dir: in\nsources:\n  orders:\n    path: o_{date}.csv\n"))["orders"]
    out = extract(source, None, D("2025-01-04"), tmp_path / "landing")
    landed = pl.read_parquet(out["path"])
    assert landed.columns[:4] == ["_source_file", "_row_number", "_load_id", "_batch_date"]  # the empty day came first
    assert landed["order_id"].to_list() == ["A", "B", "C", "D", "E"]
    assert landed["coupon"].to_list() == [None, None, None, "X1", None]
    assert [(b["batch_date"], b["rows"]) for b in out["batches"]] == [
        ("2025-01-01", 0), ("2025-01-02", 3), ("2025-01-03", 1), ("2025-01-04", 1)]
    assert not [p for p in (tmp_path / "landing").rglob("*") if p.is_file() and p.name != "part.parquet"]
