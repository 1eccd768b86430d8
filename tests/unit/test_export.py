"""The segment export files (pipeline/export.py) from small literal frames; the query runs in
tests/integration/test_refit_and_export.py on both warehouses."""
from __future__ import annotations

import hashlib
import json
from datetime import date

import polars as pl
import pytest

from pipeline.export import EXPORT_SCHEMA, FILES, MANIFEST, write_export

AS_OF = date(2025, 12, 31)


def frame(rows=None) -> pl.DataFrame:
    rows = rows if rows is not None else [("C2", AS_OF, "vip", "champions", "low", 1234.5), ("C1", AS_OF, "small", "lost", None, None)]
    return pl.DataFrame(rows, schema=EXPORT_SCHEMA, orient="row")


def digests(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_both_files_and_a_manifest_hold_the_same_rows(tmp_path):
    manifest = write_export(frame(), AS_OF, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([*FILES, MANIFEST])
    csv = pl.read_csv(tmp_path / "out" / "segments.csv", schema=EXPORT_SCHEMA)
    assert csv.equals(frame()) and pl.read_parquet(tmp_path / "out" / "segments.parquet").equals(frame())
    assert (tmp_path / "out" / "segments.csv").read_text().splitlines()[0] == ",".join(EXPORT_SCHEMA)
    assert json.loads((tmp_path / "out" / MANIFEST).read_text()) == manifest
    assert manifest["rows"] == 2 and manifest["as_of_date"] == "2025-12-31"
    assert manifest["sha256"] == {k: v for k, v in digests(tmp_path / "out").items() if k in FILES}


def test_rewriting_gives_the_same_bytes_and_an_empty_day_keeps_its_header(tmp_path):
    write_export(frame(), AS_OF, tmp_path / "out")
    first = digests(tmp_path / "out")
    write_export(frame(), AS_OF, tmp_path / "out")
    assert digests(tmp_path / "out") == first
    write_export(frame([]), AS_OF, tmp_path / "empty")
    assert (tmp_path / "empty" / "segments.csv").read_text() == ",".join(EXPORT_SCHEMA) + "\n"


def test_a_frame_with_other_columns_or_dates_is_refused(tmp_path):
    with pytest.raises(ValueError, match="columns"):
        write_export(frame().with_columns(pl.lit("x@example.com").alias("email")), AS_OF, tmp_path / "a")
    with pytest.raises(ValueError, match="other as-of dates"):
        write_export(frame(), date(2025, 12, 30), tmp_path / "b")
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
