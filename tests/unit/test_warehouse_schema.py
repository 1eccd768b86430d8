"""The schema files as the migration and the comment step read them: statements, objects, comments."""
from datetime import date

import pytest

from pipeline.warehouse import statements
from pipeline.warehouse.load import calendar
from pipeline.warehouse.schema import parse_object, sql_objects


def test_statements_split_at_line_ends_but_not_inside_dollar_quotes():
    script = "-- a header; with a semicolon\nCREATE TABLE a (x INT);\nDO $$\nBEGIN\n  PERFORM 1;\nEND\n$$;\nSELECT 1"
    parts = statements(script)
    assert len(parts) == 3
    assert parts[1].startswith("DO $$") and "PERFORM 1;" in parts[1] and parts[1].endswith("$$")
    assert parts[2] == "SELECT 1"


def test_a_table_file_yields_its_grain_and_column_comments(tmp_path):
    path = tmp_path / "t.sql"
    path.write_text("-- One row per thing per day: what it is.\n-- Second line.\nCREATE TABLE IF NOT EXISTS restricted.t (\n"
                    "    thing_id VARCHAR NOT NULL, -- The thing\n    as_of_date DATE -- The day\n)\n")
    obj = parse_object(path)
    assert (obj.kind, obj.name) == ("table", "restricted.t")
    assert obj.comment == "One row per thing per day: what it is. Second line."
    assert obj.column_comments == {"thing_id": "The thing", "as_of_date": "The day"}


def test_a_view_file_names_columns_by_their_alias(tmp_path):
    path = tmp_path / "v.sql"
    path.write_text("-- One row per x.\nCREATE OR REPLACE VIEW v AS\nSELECT\n    d.customer_id, -- Key\n"
                    "    CAST(d.x AS DATE) AS x_date, -- Day\n    tier -- Tier\nFROM d\n")
    obj = parse_object(path)
    assert obj.kind == "view" and obj.column_comments == {"customer_id": "Key", "x_date": "Day", "tier": "Tier"}


@pytest.mark.parametrize("obj", [o for f in ("tables", "views") for o in sql_objects(f)], ids=lambda o: o.name)
def test_every_shipped_object_states_its_grain_and_documents_every_column(obj):
    assert obj.comment.startswith("One row"), obj.comment
    text = obj.path.read_text(encoding="utf-8")
    if obj.kind == "table":
        body = text[text.index("(", text.index("CREATE")) + 1:]
        columns = [line.split()[0] for line in body.splitlines()
                   if line.startswith("    ") and not line.split()[0] in {"PRIMARY", ")"}]
        assert set(columns) == set(obj.column_comments), set(columns) ^ set(obj.column_comments)


def test_calendar_covers_each_day_once_with_iso_attributes():
    days = calendar(date(2024, 12, 30), date(2025, 1, 5))
    assert days.height == 7 and days["date_day"].is_unique().all()
    first = days.row(0, named=True)
    assert (first["iso_year_number"], first["iso_week_number"], first["iso_day_of_week"]) == (2025, 1, 1)
    assert days.filter("is_weekend")["day_name"].to_list() == ["Saturday", "Sunday"]
