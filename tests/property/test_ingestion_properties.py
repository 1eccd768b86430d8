"""Property: however malformed a CSV export is, every record it holds ends up accepted or quarantined,
exactly once (docs/sources.md, "What happens to the rows").

Files go through the real path: `extract` (decoding, the Arrow reader or the exact reader for ragged
files, lineage, day batches) lands them, `stage` standardizes and validates them with Great
Expectations. The expected number of records is known by construction: records are written with
an RFC 4180 writer (any text in any field: delimiters, quotes, line breaks, NUL, non-Latin scripts), with
blank lines between them (not records), rows with the wrong number of fields, an optional BOM, CRLF
line ends, a missing final line end and an unterminated quote at the end of the file (one record that
runs to the end of the file).

GX runs inside `stage` (about a second per file), so the example counts are small.
"""
from __future__ import annotations

import json
import tempfile
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from pipeline.extract import SourceIncompleteError, extract
from pipeline.schemas import common_scale
from pipeline.sources import load_sources
from pipeline.stage import QUARANTINE_COLUMNS, StageContext, batch_counts, stage
from pipeline.tasks import interval_end

pytestmark = pytest.mark.property

RUN = date(2025, 6, 1)
RATES = pl.DataFrame({"currency": ["USD", "CNY"], "rate_to_base": [1.0, 0.14]})
KNOWN_CUSTOMERS = pl.Series(["C1", "C2"])
# Reason codes of docs/sources.md: a quarantined row must carry one of them.
REASON_CODES = {
    "ragged_row", "malformed_json", "parse_error", "exact_duplicate", "superseded_version", "missing_value",
    "missing_customer_id", "unknown_customer", "out_of_range", "zero_quantity", "negative_quantity_without_return",
    "unknown_currency", "not_in_accepted_values", "likert_out_of_range", "resolved_before_opened",
    "responded_before_opened", "dated_after_interval", "text_too_long", "duplicate_key",
}

ORDER_COLUMNS = ["order_id", "line_number", "customer_id", "ordered_at", "product_id", "quantity", "unit_price",
                 "currency", "status"]
# Valid values per column, and values that are wrong in a way staging must catch.
ORDER_GOOD = {
    "order_id": ["O1", "O2", "O3", "O4", " O1 ", "Ｏ5"],
    "line_number": ["1", "2", "1.0"],
    "customer_id": ["C1", "C2"],
    "ordered_at": ["2025-06-01T10:00:00Z", "2025-06-01 08:00", "2025-06-01T10:00:00+08:00"],
    "product_id": ["P1", "商品甲", ""],
    "quantity": ["1", "2"],
    "unit_price": ["9.50", "0", "1e3"],
    "currency": ["USD", "CNY", "usd"],
    "status": ["completed", ""],
}
ORDER_BAD = {
    "order_id": [""], "line_number": ["x", "2.5", ""], "customer_id": ["C404", ""],
    "ordered_at": ["2025-06-03T00:00:00Z", "2025-13-45", ""], "product_id": [], "quantity": ["0", "-1", "2.5", "x", ""],
    "unit_price": ["-1", "12,50€", ""], "currency": ["XXX", ""], "status": ["lost", "cancelled", "returned"],
}
# Any text, weighted towards what breaks CSV readers.
junk = st.text(st.one_of(st.sampled_from(list(',"\n\r\t ;\\\'\x00') + ["\u2028", "\ufeff", "退", "款", "é"]),
                         st.characters(codec="utf-8", exclude_categories=["Cs"])), max_size=12)


def csv_line(row: list[str], quote_all: bool) -> str:
    """One record as RFC 4180 writes it. csv.writer is not used: with a "\n" line end it leaves a lone
    "\r" unquoted, which every reader (and Excel) takes for a line break."""
    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    if row == [""]:
        return '""'  # a record of one empty field, not a blank line
    return ",".join(quoted(v) if quote_all or any(c in v for c in ',"\r\n') else v for v in row)


@st.composite
def csv_files(draw, columns: list[str], good: dict[str, list[str]], bad: dict[str, list[str]]) -> tuple[bytes, list[bool], str]:
    """(file bytes, per record whether it has the header's width, encoding); the record count is len()."""
    width = len(columns)
    records, regular = [], []
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.sampled_from(["valid"] * 4 + ["near_valid"] * 3 + ["arbitrary", "copy", "ragged"]))
        if kind == "copy" and records:
            row = list(draw(st.sampled_from(records)))  # an exact copy of an earlier record
        elif kind == "ragged":  # the wrong number of fields (at least one)
            n = draw(st.integers(1, 2 * width).filter(lambda k: k != width))
            row = draw(st.lists(junk, min_size=n, max_size=n))
        else:
            row = [draw(st.sampled_from(good[c])) for c in columns]
            if kind == "near_valid":
                for i in draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=2, unique=True)):
                    row[i] = draw(st.sampled_from(bad[columns[i]]) | junk if bad[columns[i]] else junk)
            elif kind == "arbitrary":
                row = [draw(st.sampled_from(good[c] + bad[c]) | junk) for c in columns]
        records.append(row)
        regular.append(len(row) == width)
    end = draw(st.sampled_from(["\n", "\r\n"]))
    quote_all = draw(st.booleans())
    lines = [csv_line(columns, quote_all)]
    for row in records:
        lines.extend([""] * (draw(st.integers(0, 3)) // 3))  # now and then a blank line: not a record
        lines.append(csv_line(row, quote_all))
    text = "".join(line + end for line in lines)
    if draw(st.booleans()):
        text = text.removesuffix(end)  # no line end after the last record
    if draw(st.integers(0, 4)) == 0:  # an opening quote that is never closed: one record to the end
        unquoted = junk.map(lambda v: v.replace('"', ""))  # a quote in it could close the field
        text = (text if text.endswith(end) else text + end) + '"' + draw(unquoted) + "," + draw(unquoted)
        regular.append(False)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "auto"]))
    data = ("\ufeff" if encoding != "utf-8" and draw(st.booleans()) else "") + text
    return data.encode("utf-8"), regular, encoding


def land_and_stage(kind: str, config: str, data: bytes, known_customers=KNOWN_CUSTOMERS):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "sources.yml").write_text("base_dir: in\n" + config, encoding="utf-8")
        source = load_sources(root / "sources.yml")[kind]
        source.path_for(RUN).write_bytes(data)
        out = extract(source, None, RUN, root / "landing")
        landed = pl.read_parquet(out["path"]) if out["path"] else pl.DataFrame()
        if landed.is_empty():
            return out, landed, None
        ctx = StageContext(source, interval_end(RUN), RATES, known_customers, None, "salt")
        return out, landed, stage(kind, landed, ctx)


def cut_inside_last_record(data: bytes, regular: list[bool]) -> bool:
    """No line end after a last record of the wrong width: what a writer still at work leaves, which
    the extract refuses as a whole (tests/faults/test_partial_file.py) rather than land half a record."""
    return bool(regular) and not regular[-1] and not data.endswith((b"\n", b"\r"))


def check_every_record_is_accounted_for(kind: str, out: dict, landed: pl.DataFrame, staged, regular: list[bool]) -> None:
    assert landed.height == len(regular)  # every record was landed, blank lines were not
    assert sum(b["rows"] for b in out["batches"]) == landed.height
    if staged is None:
        return
    accepted, quarantine = staged.accepted, staged.quarantine
    accepted_rows = accepted["source_row_number"].to_list()
    quarantined_rows = quarantine["source_row_number"].to_list()
    # Each landed row in exactly one of the two: counts add up, nothing twice, nothing in both.
    assert accepted.height + quarantine.height == landed.height
    assert sorted(accepted_rows + quarantined_rows) == list(range(1, landed.height + 1))
    reconciliation = batch_counts(kind, out["batches"], accepted, quarantine)
    assert reconciliation["raw_rows"].sum() == landed.height
    # A record of the wrong width is quarantined as such, where it was in the file.
    reasons = dict(zip(quarantined_rows, quarantine["reason_code"].to_list()))
    for number, ok in enumerate(regular, start=1):
        if not ok:
            assert reasons.get(number) == "ragged_row", (number, reasons.get(number))
    # Every quarantined row says why, with a documented reason code, and keeps the original record.
    assert set(quarantine.columns) >= set(QUARANTINE_COLUMNS)
    assert set(quarantine["reason_code"]) <= REASON_CODES, set(quarantine["reason_code"]) - REASON_CODES
    assert quarantine["reason_detail"].is_not_null().all()
    for record in quarantine["raw_record"]:
        assert json.loads(record)  # a non-empty JSON object or list of the original fields
    for code in set(quarantine["reason_code"]):
        event(f"quarantined: {code}")
    event(f"accepted rows: {'none' if accepted.is_empty() else 'some'}")


ORDERS = "sources:\n  orders:\n    path: orders_{{date}}.csv\n    encoding: {encoding}\n"


@settings(max_examples=10, deadline=None)
@given(csv_files(ORDER_COLUMNS, ORDER_GOOD, ORDER_BAD))
def test_every_order_record_is_accepted_or_quarantined_exactly_once(export):
    data, regular, encoding = export
    note(data.decode("utf-8"))
    if cut_inside_last_record(data, regular):
        with pytest.raises(SourceIncompleteError):
            land_and_stage("orders", ORDERS.format(encoding=encoding), data)
        return
    out, landed, staged = land_and_stage("orders", ORDERS.format(encoding=encoding), data)
    check_every_record_is_accounted_for("orders", out, landed, staged, regular)
    if staged is not None and staged.accepted.height:
        # The latest version of a business key wins: accepted keys are unique.
        assert not staged.accepted.select("order_id", "line_number").is_duplicated().any()


SURVEYS = (
    "sources:\n  surveys:\n    path: surveys_{date}.csv\n    missing_customer: keep\n    missing_values: ['-99']\n"
    "    likert:\n      scale: [1, 7]\n      ranges: {q3: [1, 100], nps: [0, 10]}\n"
    "      measures: {per_reliability: [q1, q2], per_empathy: [q3], recommend: [nps]}\n"
)
SURVEY_COLUMNS = ["response_id", "responded_at", "customer_id", "q1", "q2", "q3", "nps"]
SURVEY_GOOD = {
    "response_id": ["R1", "R2", "R3", "R4"],
    "responded_at": ["2025-06-01T09:00:00Z", "2025-06-01"],
    "customer_id": ["C1", "C2", ""],
    "q1": ["1", "4", "7", "7.0", "-99", ""],
    "q2": ["1", "3.5", "7"],
    "q3": ["1", "50", "99", "100", ""],
    "nps": ["0", "6", "9", "10"],
}
SURVEY_BAD = {
    "response_id": [""], "responded_at": ["2025-06-02T00:00:00Z", "yesterday", ""], "customer_id": ["C404"],
    "q1": ["0", "8", "n/a"], "q2": ["-1"], "q3": ["101", "0"], "nps": ["11", "-1"],
}


@settings(max_examples=5, deadline=None)
@given(csv_files(SURVEY_COLUMNS, SURVEY_GOOD, SURVEY_BAD))
def test_every_survey_record_is_accounted_for_and_accepted_scores_are_on_the_common_scale(export):
    data, regular, _ = export
    note(data.decode("utf-8"))
    if cut_inside_last_record(data, regular):
        with pytest.raises(SourceIncompleteError):
            land_and_stage("surveys", SURVEYS, data)
        return
    out, landed, staged = land_and_stage("surveys", SURVEYS, data)
    check_every_record_is_accounted_for("surveys", out, landed, staged, regular)
    if staged is None:
        return
    for measure in ("per_reliability", "per_empathy", "recommend"):
        low, high = common_scale(measure)
        scores = staged.accepted[f"{measure}_score"].drop_nulls()
        assert scores.is_between(low, high).all(), (measure, scores.to_list())
        answers = staged.answers.filter(pl.col("measure") == measure)["score"]
        assert answers.is_between(low, high).all(), (measure, answers.to_list())
