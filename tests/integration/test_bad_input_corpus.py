"""The bad-input corpus: each case is a small real file (or config) with its expected outcome, a clear
error or quarantine rows with a given reason. Every staged case also checks raw = accepted + quarantined."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import polars as pl
import pytest

from pipeline.extract import SourceReadError, extract
from pipeline.mapping import SchemaDriftError
from pipeline.sources import SourceConfigError, load_sources
from pipeline.stage import StageContext, stage
from pipeline.tasks import interval_end

RUN = date(2025, 6, 1)
RATES = pl.DataFrame({"currency": ["USD", "CNY", "GBP"], "rate_to_base": [1.0, 0.14, 1.27]})
HEADER = "order_id,line_number,customer_id,ordered_at,product_id,quantity,unit_price,currency,status"
ROW = "O{n},1,C1,2025-06-01T10:00:00Z,P1,2,9.50,USD,completed"
ORDERS = "sources:\n  orders:\n    path: orders_{{date}}.{ext}\n    format: {fmt}\n{extra}"
COMPLAINT = {"ticket_id": "T1", "customer_id": "C1", "opened_at": "2025-06-01T09:00:00Z", "category": "billing",
             "severity": "low", "description": "Charged twice"}
SURVEY_CONFIG = (
    "sources:\n  surveys:\n    path: surveys_{date}.csv\n    missing_values: ['-99']\n    missing_customer: keep\n"
    "    likert:\n      scale: [1, 7]\n      measures: {per_reliability: [q1, q2], satisfaction: [sat]}\n"
)


def orders_csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def good(n: int = 1) -> str:
    return ROW.format(n=n)


def with_field(n: int, **values) -> str:
    fields = dict(zip(HEADER.split(","), good(n).split(",")))
    return ",".join(str(values.get(k, v)) for k, v in fields.items())


@dataclass
class Case:
    content: str | bytes | None
    quarantined: dict[str, int] = field(default_factory=dict)
    accepted: int | None = None
    error: tuple[type[Exception], str] | None = None
    config: str = ORDERS.format(ext="csv", fmt="csv", extra="")
    kind: str = "orders"
    check: object = None  # optional callable(accepted, quarantine)


def _mixed_zones(accepted, _):
    got = dict(zip(accepted["order_id"], accepted["ordered_at"]))
    assert got["O1"] == datetime(2025, 6, 1, 2, tzinfo=timezone.utc)  # +08:00
    assert got["O2"] == datetime(2025, 6, 1, 10, tzinfo=timezone.utc)  # Z
    assert got["O3"] == datetime(2025, 6, 1, 9, tzinfo=timezone.utc)  # naive, Europe/London in summer


def _text_kept(accepted, _):
    assert accepted["description"][0] == 'He said "refund me",\nthen hung up; 退款'


def _chinese_kept(accepted, _):
    assert accepted["product_id"].to_list() == ["商品甲"]


def _bom_stripped(accepted, _):
    assert accepted["order_id"].to_list() == ["O1"]


def _guest_kept(accepted, _):
    assert accepted["customer_id"].to_list() == [None]


def _missing_answer_skipped(accepted, _):
    # q1 = -99 (no answer) is left out of the mean; q2 = 7 on 1-7 stays 7
    assert accepted["per_reliability_score"].to_list() == [7.0]


def _cancellation_accepted(accepted, _):
    assert accepted["status"].to_list() == ["completed", "cancelled"]
    assert accepted["line_amount"].to_list() == [19.0, -19.0]


ID_PREFIX = "    cancellations:\n      id_prefix: {column: order_id, prefix: C}\n"
GUEST = "    missing_customer: keep\n"
LONDON = "    timezone: Europe/London\n"
COMPLAINTS = "sources:\n  complaints:\n    path: complaints_{date}.jsonl\n    format: jsonl\n"

CASES = {
    # encodings
    "wrong_encoding_is_a_clear_error": Case(
        orders_csv(with_field(1, product_id="商品甲")).encode("gb18030"), error=(SourceReadError, "not valid utf-8.*gb18030")),
    "gb18030_auto_detected_and_chinese_kept": Case(
        orders_csv(with_field(1, product_id="商品甲")).encode("gb18030"), accepted=1, check=_chinese_kept,
        config=ORDERS.format(ext="csv", fmt="csv", extra="    encoding: auto\n")),
    "bom_is_not_part_of_the_first_column": Case(b"\xef\xbb\xbf" + orders_csv(good(1)).encode(), accepted=1, check=_bom_stripped),
    "undecodable_bytes_with_auto_are_a_clear_error": Case(
        b"\xff\xfe\x00\x81" * 8, error=(SourceReadError, "neither UTF-8 nor GB18030"),
        config=ORDERS.format(ext="csv", fmt="csv", extra="    encoding: auto\n")),
    # shape of the file
    "ragged_row_with_too_many_fields": Case(orders_csv(good(1), good(2) + ",extra"), {"ragged_row": 1}),
    "ragged_row_with_too_few_fields": Case(orders_csv(good(1), "O2,1,C1"), {"ragged_row": 1}),
    "missing_required_column": Case(
        orders_csv("O1,1,C1,2025-06-01T10:00:00Z,P1,2,USD,completed", header=HEADER.replace(",unit_price", "")),
        error=(SchemaDriftError, "lacks 'unit_price'")),
    "extra_columns_are_ignored": Case(orders_csv(good(1) + ",x", header=HEADER + ",coupon_code"), accepted=1),
    "renamed_column_names_the_likely_match": Case(
        orders_csv(good(1), header=HEADER.replace("order_id", "Order ID")),
        error=(SchemaDriftError, "did you mean 'Order ID'")),
    "duplicate_header_names": Case(orders_csv(good(1) + ",1", header=HEADER + ",quantity"), error=(SourceReadError, "duplicate")),
    "empty_file_is_an_empty_batch": Case(b"", accepted=0),
    "header_only_file_is_an_empty_batch": Case(orders_csv(), accepted=0),
    # values
    "non_numeric_amount": Case(orders_csv(good(1), with_field(2, unit_price='"12,50€"')), {"parse_error": 1}),
    "negative_quantity_without_return_marker": Case(orders_csv(good(1), with_field(2, quantity=-2)),
                                                    {"negative_quantity_without_return": 1}),
    "negative_quantity_with_cancellation_prefix": Case(
        orders_csv(good(1), with_field(2, order_id="C2", quantity=-2)), accepted=2, check=_cancellation_accepted,
        config=ORDERS.format(ext="csv", fmt="csv", extra=ID_PREFIX)),
    "zero_quantity": Case(orders_csv(good(1), with_field(2, quantity=0)), {"zero_quantity": 1}),
    "unknown_currency": Case(orders_csv(good(1), with_field(2, currency="XYZ")), {"unknown_currency": 1}),
    "date_in_the_future": Case(orders_csv(good(1), with_field(2, ordered_at="2025-06-03T00:00:00Z")), {"dated_after_interval": 1}),
    "malformed_date": Case(orders_csv(good(1), with_field(2, ordered_at="2025-13-45")), {"parse_error": 1}),
    "mixed_time_zones": Case(
        orders_csv(with_field(1, ordered_at="2025-06-01T10:00:00+08:00"), with_field(2, ordered_at="2025-06-01 10:00:00Z"),
                   with_field(3, ordered_at="2025-06-01 10:00:00")),
        accepted=3, check=_mixed_zones, config=ORDERS.format(ext="csv", fmt="csv", extra=LONDON)),
    "exact_duplicate_order_line": Case(orders_csv(good(1), good(1)), {"exact_duplicate": 1}),
    "later_version_of_a_line_wins": Case(orders_csv(good(1), with_field(1, quantity=3)), {"superseded_version": 1}),
    "unknown_customer_id": Case(orders_csv(good(1), with_field(2, customer_id="C404")), {"unknown_customer": 1}),
    "missing_customer_id_quarantined_by_default": Case(orders_csv(good(1), with_field(2, customer_id="")),
                                                       {"missing_customer_id": 1}),
    "missing_customer_id_kept_as_guest_when_configured": Case(
        orders_csv(with_field(1, customer_id="")), accepted=1, check=_guest_kept,
        config=ORDERS.format(ext="csv", fmt="csv", extra=GUEST)),
    # surveys
    "likert_answer_out_of_range": Case("response_id,responded_at,q1,q2,sat\nR1,2025-06-01,5,6,7\nR2,2025-06-01,8,6,7\n",
                                       {"likert_out_of_range": 1}, kind="surveys", config=SURVEY_CONFIG),
    "likert_missing_value_marker_is_no_answer": Case("response_id,responded_at,q1,q2,sat\nR1,2025-06-01,-99,7,7\n",
                                                     accepted=1, kind="surveys", config=SURVEY_CONFIG,
                                                     check=_missing_answer_skipped),
    "likert_item_missing_from_the_export": Case("response_id,responded_at,q1,sat\nR1,2025-06-01,5,7\n", kind="surveys",
                                                config=SURVEY_CONFIG, error=(SourceConfigError, "'q2'")),
    # complaints (JSON lines)
    "resolved_before_opened": Case(
        "\n".join(json.dumps(COMPLAINT | d) for d in ({}, {"ticket_id": "T2", "resolved_at": "2025-06-01T08:00:00Z"})),
        {"resolved_before_opened": 1}, kind="complaints", config=COMPLAINTS),
    "very_long_text_field": Case(
        "\n".join(json.dumps(COMPLAINT | d) for d in ({}, {"ticket_id": "T2", "description": "x" * 40_000})),
        {"text_too_long": 1}, kind="complaints", config=COMPLAINTS),
    "malformed_json_line": Case(json.dumps(COMPLAINT) + '\n{"ticket_id": "T2", "category": \n', {"malformed_json": 1},
                                kind="complaints", config=COMPLAINTS),
    "embedded_newlines_and_quotes_survive": Case(
        json.dumps(COMPLAINT | {"description": 'He said "refund me",\nthen hung up; 退款'}, ensure_ascii=False),
        accepted=1, kind="complaints", config=COMPLAINTS, check=_text_kept),
    # configs that try to smuggle SQL
    "sql_in_a_table_name": Case(None, config=(
        "sources:\n  orders:\n    database: {url: 'sqlite://', table: 'orders; DROP TABLE customers', "
        "incremental_column: ordered_at}\n"), error=(SourceConfigError, "not a plain SQL identifier")),
    "sql_in_an_incremental_column": Case(None, config=(
        "sources:\n  orders:\n    database: {url: 'sqlite://', table: orders, incremental_column: 'ordered_at--'}\n"),
        error=(SourceConfigError, "not a plain SQL identifier")),
    "sql_in_a_mapped_database_column": Case(None, config=(
        "sources:\n  orders:\n    database: {url: 'sqlite://', table: orders, incremental_column: ordered_at}\n"
        "    columns: {order_id: 'id) FROM users; --'}\n"), error=(SourceConfigError, "not a plain SQL identifier")),
    "sql_statement_in_a_derived_field": Case(None, config=(
        "sources:\n  orders:\n    path: o_{date}.csv\n    derive: {channel: \"'web'; DROP TABLE fct_order_line\"}\n"),
        error=(SourceConfigError, "not a valid SQL expression")),
}


def run_case(tmp_path, case: Case):
    (tmp_path / "in").mkdir()
    config = tmp_path / "sources.yml"
    config.write_text("base_dir: in\n" + case.config, encoding="utf-8")
    source = load_sources(config)[case.kind]
    if case.content is not None:
        name = source.path_for(RUN).name
        data = case.content.encode("utf-8") if isinstance(case.content, str) else case.content
        (tmp_path / "in" / name).write_bytes(data)
    out = extract(source, None, RUN, tmp_path / "landing")
    landed = pl.read_parquet(out["path"]) if out["path"] else pl.DataFrame()
    assert sum(b["rows"] for b in out["batches"]) == landed.height
    if landed.is_empty():
        return out, pl.DataFrame(), pl.DataFrame(schema={"reason_code": pl.String})
    ctx = StageContext(source, interval_end(RUN), RATES, pl.Series(["C1", "C2", "C3"]), None, "salt")
    staged = stage(case.kind, landed, ctx)
    assert landed.height == staged.accepted.height + staged.quarantine.height  # nothing lost, nothing doubled
    return out, staged.accepted, staged.quarantine


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(tmp_path, name):
    case = CASES[name]
    if case.error:
        kind, match = case.error
        with pytest.raises(kind, match=match):
            run_case(tmp_path, case)
        return
    out, accepted, quarantine = run_case(tmp_path, case)
    reasons = dict(quarantine["reason_code"].value_counts().rows()) if quarantine.height else {}
    assert reasons == case.quarantined
    if case.accepted is not None:
        assert accepted.height == case.accepted
    if case.quarantined:
        assert quarantine["raw_record"].str.len_chars().min() > 2  # the original row is kept, not "{}"
        assert quarantine["reason_detail"].is_not_null().all()
    if case.check:
        case.check(accepted, quarantine)
    if case.content is not None and not case.content.strip() if isinstance(case.content, (str, bytes)) else False:
        assert [b["rows"] for b in out["batches"]] == [0]  # an empty day is recorded as an empty batch
