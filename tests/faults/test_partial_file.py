"""A source file still being written when the run reads it: its last line has no line end and stops
in the middle of a record (the writer has not flushed the rest).

Landing what is there would put half a record in quarantine and, worse, lose every record not yet
written for that batch without a trace: the batch would be recorded as loaded, and no later run
takes it again. So the extract refuses the file (SourceIncompleteError, naming it) and lands nothing
of that source; the error is not "bad input", so Airflow's retries wait for the rest. Once the
complete file is there, the retry gives exactly the tables of a run that found it complete.
"""
from __future__ import annotations

import gzip

import pytest

from pipeline.extract import SourceIncompleteError, read_file
from pipeline.schemas import READ_ERROR
from pipeline.sources import SourceConfig
from tests.conftest import SAMPLE_END
from tests.faults.conftest import source_records, warehouse_rows, warehouse_state
from tests.faults.driver import extract_and_stage, run_day

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("faults")]
FILES = {"orders": f"orders/orders_{SAMPLE_END}.csv", "complaints": f"complaints/complaints_{SAMPLE_END}.jsonl"}


def cut_inside_the_last_record(data: bytes) -> bytes:
    """The file as a writer leaves it half-way through its last record: no line end, half the line."""
    body = data.rstrip(b"\r\n")
    start = body.rfind(b"\n") + 1
    return body[: start + (len(body) - start) // 2]


@pytest.mark.parametrize("kind", FILES)
def test_a_file_cut_inside_its_last_record_is_refused_until_it_is_complete(kind, at_mid, references, tally):
    warehouse = at_mid("duckdb", own_sample=True)
    path = warehouse.sample / FILES[kind]
    complete = path.read_bytes()
    path.write_bytes(cut_inside_the_last_record(complete))
    with pytest.raises(SourceIncompleteError, match=rf"{path.name}: the last line has no line end"):
        extract_and_stage(warehouse.home, warehouse.url, SAMPLE_END)
    landed = warehouse.home / "landing" / kind / f"run_date={SAMPLE_END}"
    assert not (landed.exists() and any(landed.iterdir()))  # not even a temporary part of the other days
    assert warehouse_state(warehouse.url) == references("duckdb").mid_state
    path.write_bytes(complete)  # the writer finished
    run_day(warehouse.home, warehouse.url, SAMPLE_END)  # the retry
    assert warehouse_state(warehouse.url) == references("duckdb").end_state
    tally(f"{kind} file still being written", warehouse, source_records(warehouse.sample, SAMPLE_END),
          warehouse_rows(warehouse.url))


@pytest.mark.parametrize("content", [
    pytest.param(b"order_id,line_number\nO1,1\nO2,1", id="csv_last_line_complete"),
    pytest.param(b'{"ticket_id": "T1"}\n{"ticket_id": "T2"}', id="jsonl_last_line_complete"),
])
def test_a_complete_last_record_without_a_line_end_is_read(tmp_path, content):
    """Hand-made exports often end without a line end: only a record actually cut short is refused."""
    fmt = "csv" if content.startswith(b"order_id") else "jsonl"
    path = tmp_path / f"export.{fmt}"
    path.write_bytes(content)
    frame, _ = read_file(SourceConfig(kind="orders", format=fmt), path)
    assert frame.height == 2 and frame[READ_ERROR].is_null().all()


def test_a_truncated_gzip_file_is_refused_as_still_being_written(tmp_path):
    path = tmp_path / "orders.csv.gz"
    data = gzip.compress(b"order_id,line_number\n" + b"".join(b"O%d,1\n" % i for i in range(2000)))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceIncompleteError, match="orders.csv.gz: the gzip stream ends early"):
        read_file(SourceConfig(kind="orders", format="csv"), path)
