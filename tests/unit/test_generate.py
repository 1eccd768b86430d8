"""Tests for the raw CRM sample-data generator (pipeline/generate.py)."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.generate import COMMENTS, FX_PER_USD, SERVQUAL_DIMENSIONS, generate

END = date(2025, 6, 30)
DAYS = 45
CUSTOMERS = 3000
WINDOW_START = END - timedelta(days=DAYS - 1)
CUTOFF = datetime(END.year, END.month, END.day, tzinfo=timezone.utc) + timedelta(days=1)
EXTENSION = {"customers": "csv", "orders": "csv", "surveys": "csv", "complaints": "jsonl"}
TIMESTAMPS = {"customers": ["signed_up_at"], "orders": ["ordered_at"], "surveys": ["responded_at"],
              "complaints": ["opened_at", "first_response_at", "resolved_at"]}
ISO_WITH_OFFSET = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
OFFSETS = {"CN": "+08:00", "US": "-05:00", "GB": "+00:00", "DE": "+01:00", "FR": "+01:00", "JP": "+09:00"}
ITEMS = [f"{d}_{i}" for d, k in SERVQUAL_DIMENSIONS for i in range(1, k + 1)]
LIKERT = [f"{side}_{item}" for side in ("exp", "per") for item in ITEMS]


def _files(out: Path, kind: str) -> list[Path]:
    return sorted((out / kind).glob(f"*.{EXTENSION[kind]}"))


def _read(out: Path, kind: str) -> pl.DataFrame:
    """All files of a kind as strings, with the file's day in `file_day`."""
    frames = []
    for path in _files(out, kind):
        frame = (pl.read_ndjson(path, infer_schema_length=None) if kind == "complaints"
                 else pl.read_csv(path, infer_schema=False))
        frames.append(frame.with_columns(file_day=pl.lit(date.fromisoformat(path.stem.split("_")[-1]))))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _utc(column: str) -> pl.Expr:
    return pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")


def _int(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Int64)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, customers=CUSTOMERS, days=DAYS, seed=11, end_date=END, dirty_rate=0.0)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dirty")
    generate(out, customers=CUSTOMERS, days=DAYS, seed=11, end_date=END, dirty_rate=0.05)
    return out


@pytest.fixture(scope="module")
def tables(clean: tuple[Path, dict[str, int]]) -> dict[str, pl.DataFrame]:
    return {kind: _read(clean[0], kind) for kind in EXTENSION}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_and_arguments_give_byte_identical_files(tmp_path: Path) -> None:
    runs = [generate(tmp_path / name, customers=400, days=20, seed=5, end_date=END, dirty_rate=0.05)
            for name in ("a", "b")]
    assert runs[0] == runs[1]
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    generate(tmp_path / "c", customers=400, days=20, seed=6, end_date=END, dirty_rate=0.05)
    assert _tree(tmp_path / "a") != _tree(tmp_path / "c")


def test_returned_counts_match_rows_written(clean: tuple[Path, dict[str, int]],
                                            tables: dict[str, pl.DataFrame]) -> None:
    _, counts = clean
    assert counts == {kind: frame.height for kind, frame in tables.items()}
    assert counts["customers"] == CUSTOMERS


def test_required_columns_in_order(tables: dict[str, pl.DataFrame]) -> None:
    expected = {
        "customers": ["customer_id", "full_name", "email", "phone", "country", "city", "signed_up_at"],
        "orders": ["order_id", "line_number", "customer_id", "ordered_at", "product_id", "category", "quantity",
                   "unit_price", "unit_cost", "currency", "channel", "status"],
        "surveys": ["response_id", "customer_id", "order_id", "responded_at", *LIKERT, "recommend_score",
                    "satisfaction_score", "comment"],
        "complaints": ["ticket_id", "customer_id", "order_id", "opened_at", "first_response_at", "resolved_at",
                       "category", "severity", "channel", "is_reopened", "description"],
    }
    for kind, columns in expected.items():
        assert tables[kind].columns == [*columns, "file_day"], kind


def test_one_file_per_utc_day_holding_that_days_rows(clean: tuple[Path, dict[str, int]],
                                                     tables: dict[str, pl.DataFrame]) -> None:
    out, _ = clean
    window = {WINDOW_START + timedelta(days=i) for i in range(DAYS)}
    for kind in EXTENSION:
        days = [date.fromisoformat(p.stem.removeprefix(f"{kind}_")) for p in _files(out, kind)]
        assert set(days) <= window and len(days) == len(set(days)), kind
        assert all(p.stat().st_size > 0 for p in _files(out, kind))
    assert len(_files(out, "orders")) == DAYS  # busy enough that no day is empty

    for kind, (column, *_) in TIMESTAMPS.items():
        utc_day = tables[kind].select(_utc(column).dt.date().alias("d"), "file_day")
        if kind == "customers":  # sign-ups before the window live in the first day's file
            utc_day = utc_day.with_columns(pl.max_horizontal("d", pl.lit(WINDOW_START)).alias("d"))
        assert (utc_day["d"] == utc_day["file_day"]).all(), kind


def test_first_day_file_holds_customers_who_signed_up_before_the_window(tables: dict[str, pl.DataFrame]) -> None:
    customers = tables["customers"].with_columns(_utc("signed_up_at").alias("at"))
    before = customers.filter(pl.col("at").dt.date() < WINDOW_START)
    assert (before["file_day"] == WINDOW_START).all()
    assert 0.35 < before.height / CUSTOMERS < 0.45
    assert customers["customer_id"].str.contains(r"^C\d{7}$").all()
    assert customers["customer_id"].is_unique().all()


def test_timestamps_are_iso_8601_with_the_customers_offset(tables: dict[str, pl.DataFrame]) -> None:
    country = tables["customers"].select("customer_id", "country")
    for kind, columns in TIMESTAMPS.items():
        frame = tables[kind].join(country, on="customer_id", how="left") if kind != "customers" else tables[kind]
        for column in columns:
            stamps = frame.filter(pl.col(column).is_not_null())
            assert stamps[column].str.contains(ISO_WITH_OFFSET.pattern).all(), (kind, column)
            for value, code in stamps.select(column, "country").head(200).iter_rows():
                parsed = datetime.fromisoformat(value)
                assert parsed.utcoffset() is not None and value.endswith(OFFSETS[code])


def test_top_fifth_of_customers_carry_most_net_revenue(tables: dict[str, pl.DataFrame]) -> None:
    fx = pl.col("currency").replace_strict(FX_PER_USD, return_dtype=pl.Float64)
    net = (tables["orders"].filter(pl.col("status") == "completed")
           .group_by("customer_id").agg(usd=(_int("quantity") * pl.col("unit_price").cast(pl.Float64) / fx).sum()))
    buyers = np.sort(net["usd"].to_numpy())[::-1]
    everyone = np.concatenate([buyers, np.zeros(CUSTOMERS - buyers.size)])
    assert everyone[: CUSTOMERS // 5].sum() / everyone.sum() > 0.5
    assert buyers[: buyers.size // 5].sum() / buyers.sum() > 0.5  # concentrated even among buyers


def test_order_shape(tables: dict[str, pl.DataFrame]) -> None:
    orders = tables["orders"]
    per_order = orders.group_by("order_id").agg(n=pl.len(), lines=_int("line_number").sort(),
                                                statuses=pl.col("status").unique())
    assert per_order["n"].is_between(1, 5).all()
    assert all(lines.to_list() == list(range(1, len(lines) + 1)) for lines in per_order["lines"])
    # All lines share the order's status; only returns may be per line.
    mixed = per_order.filter(pl.col("statuses").list.len() > 1)["statuses"]
    assert all(set(s) == {"completed", "returned"} for s in mixed.to_list())
    status = orders["status"].value_counts(normalize=True)
    share = dict(zip(status["status"], status["proportion"]))
    assert 0.88 < share["completed"] < 0.97 and share["cancelled"] < 0.07 and share["returned"] < 0.08
    ratio = orders.select(pl.col("unit_cost").cast(pl.Float64) / pl.col("unit_price").cast(pl.Float64))
    assert ratio.to_series().is_between(0.4, 0.8).mean() > 0.85
    currency = orders.join(tables["customers"].select("customer_id", "country"), on="customer_id")
    expected = {"CN": "CNY", "US": "USD", "GB": "GBP", "DE": "EUR", "FR": "EUR", "JP": "JPY"}
    assert (currency["currency"] == currency["country"].replace_strict(expected)).all()
    surveys, complaints = tables["surveys"].height, tables["complaints"].height
    assert 0.05 < surveys / per_order.height < 0.11 and 0.015 < complaints / per_order.height < 0.05


def test_clean_when_dirty_rate_is_zero(tables: dict[str, pl.DataFrame]) -> None:
    customers, orders, surveys, complaints = (tables[k] for k in ("customers", "orders", "surveys", "complaints"))
    known = customers.select("customer_id", signed=_utc("signed_up_at"))
    assert orders.join(known, on="customer_id", how="anti").is_empty()
    placed = orders.join(known, on="customer_id").select(ok=_utc("ordered_at") >= pl.col("signed"))
    assert placed["ok"].all()
    assert orders.select(_int("quantity") >= 1).to_series().all()
    assert orders["unit_price"].str.contains(r"^\d+(\.\d{2})?$").all()
    assert orders.select(pl.col("unit_price").cast(pl.Float64) > 0).to_series().all()
    assert not orders.drop("file_day").is_duplicated().any()
    assert orders.select(pl.struct("order_id", "line_number").is_unique()).to_series().all()

    assert surveys.select(pl.all_horizontal(_int(c).is_between(1, 7) for c in LIKERT)).to_series().all()
    assert surveys.select(_int("recommend_score").is_between(0, 10)).to_series().all()
    assert surveys.select(_int("satisfaction_score").is_between(1, 7)).to_series().all()
    survey_after_order = surveys.join(orders.select("order_id", "customer_id", "ordered_at").unique(),
                                      on=["order_id", "customer_id"])
    assert survey_after_order.height == surveys.height
    assert survey_after_order.select(_utc("responded_at") >= _utc("ordered_at")).to_series().all()

    referenced = complaints.filter(pl.col("order_id").is_not_null())
    ticket_after_order = referenced.join(orders.select("order_id", "customer_id", "ordered_at").unique(),
                                         on=["order_id", "customer_id"])
    assert ticket_after_order.height == referenced.height
    assert ticket_after_order.select(_utc("opened_at") >= _utc("ordered_at")).to_series().all()
    stamps = complaints.select(opened=_utc("opened_at"), first=_utc("first_response_at"),
                               resolved=_utc("resolved_at"))
    assert stamps.select((pl.col("opened") <= pl.col("first")) | pl.col("first").is_null()).to_series().all()
    assert stamps.select((pl.col("first") <= pl.col("resolved"))
                         | pl.col("first").is_null() | pl.col("resolved").is_null()).to_series().all()
    assert stamps.select((pl.col("opened") <= pl.col("resolved")) | pl.col("resolved").is_null()).to_series().all()

    for kind, columns in TIMESTAMPS.items():
        for column in columns:
            assert tables[kind].select((_utc(column) < CUTOFF) | pl.col(column).is_null()).to_series().all()


def test_dirty_rows_appear_when_dirty_rate_is_positive(dirty: Path, clean: tuple[Path, dict[str, int]]) -> None:
    orders, surveys, complaints = (_read(dirty, kind) for kind in ("orders", "surveys", "complaints"))
    customers = _read(dirty, "customers")
    assert _tree(dirty / "customers") == _tree(clean[0] / "customers")  # defects never touch clean rows' draws

    completed = orders.filter(pl.col("status") == "completed")
    assert completed.select(_int("quantity") < 0).to_series().any()
    assert (orders["unit_price"] == "N/A").any() and orders["unit_price"].is_null().any()
    unknown = orders.join(customers.select("customer_id"), on="customer_id", how="anti")["customer_id"]
    assert unknown.str.contains(r"^C\d{7}x$").any() and unknown.str.contains(r"^C\d{7}$").any()
    assert orders.drop("file_day").is_duplicated().any()
    likert = surveys.select(pl.any_horizontal(_int(c).is_in([0, 9]) for c in LIKERT)).to_series()
    assert likert.any()
    assert (surveys.select(_int("recommend_score")).to_series() == 11).any()
    assert complaints.select(_utc("resolved_at") < _utc("opened_at")).to_series().any()


def test_comments_round_trip_through_csv_quoting(clean: tuple[Path, dict[str, int]],
                                                 tables: dict[str, pl.DataFrame]) -> None:
    pool = {c for sentiment in COMMENTS for language in sentiment for c in language}
    parsed = []
    for path in _files(clean[0], "surveys"):
        with path.open(newline="", encoding="utf-8") as handle:
            parsed.extend(row["comment"] for row in csv.DictReader(handle))
    written = [c for c in parsed if c]
    assert len(parsed) == tables["surveys"].height
    assert set(written) <= pool
    assert any("\n" in c for c in written) and any('"' in c for c in written) and any("," in c for c in written)
    assert sorted(written) == sorted(tables["surveys"]["comment"].drop_nulls().to_list())
    chinese = sum(bool(re.search(r"[\u4e00-\u9fff]", c)) for c in written) / len(written)
    assert 0.15 < chinese < 0.45
    assert 0.5 < len(parsed) - len(written) < len(parsed)  # often empty


def test_servqual_items_correlate_and_perception_trails_expectation(tables: dict[str, pl.DataFrame]) -> None:
    surveys = tables["surveys"].select(*(_int(c) for c in [*LIKERT, "recommend_score"]))
    for dimension, k in SERVQUAL_DIMENSIONS:
        expectation = surveys.select(pl.col(f"^exp_{dimension}_\\d$")).to_numpy().astype(float)
        perception = surveys.select(pl.col(f"^per_{dimension}_\\d$")).to_numpy().astype(float)
        assert expectation.shape[1] == k
        assert perception.mean() < expectation.mean(), dimension
        for items in (expectation, perception):
            alpha = k / (k - 1) * (1 - items.var(axis=0, ddof=1).sum() / items.sum(axis=1).var(ddof=1))
            assert 0.65 < alpha < 0.93, (dimension, alpha)
    perception = surveys.select(pl.col("^per_.*$")).to_numpy().mean(axis=1)
    assert np.corrcoef(perception, surveys["recommend_score"].to_numpy())[0, 1] > 0.4


def test_contact_details_look_real(tables: dict[str, pl.DataFrame]) -> None:
    customers = tables["customers"]
    assert customers["email"].str.contains(r"(?i)^[a-z0-9._+]+@example\.(com|cn|org)$").all()
    assert customers["email"].str.to_lowercase().is_unique().all()
    assert customers["full_name"].str.contains(r"[\u4e00-\u9fff]").any()
    assert customers["full_name"].str.contains(r"^[A-Za-z]").any()
    phone_pattern = {"CN": r"^(\+86[- ])?1\d{2}[- ]?\d{4}[- ]?\d{4}$", "US": r"\d{3}\D{0,2}555\D?01\d{2}$",
                     "JP": r"^(\+81 |0)\d{1,2}-?\d{4}-?\d{4}$"}
    for code, pattern in phone_pattern.items():
        phones = customers.filter(pl.col("country") == code)["phone"]
        assert phones.str.contains(pattern).all(), code
    valid = [phonenumbers.is_valid_number(phonenumbers.parse(phone, country))
             for phone, country in customers.select("phone", "country").iter_rows()]
    assert np.mean(valid) > 0.99  # the standardizer keeps only numbers libphonenumber accepts


def test_rejects_out_of_range_arguments(tmp_path: Path) -> None:
    for kwargs in ({"customers": 0, "days": 1}, {"customers": 10_000_000, "days": 1},
                   {"customers": 1, "days": 0}, {"customers": 1, "days": 1, "dirty_rate": 1.5}):
        with pytest.raises(ValueError):
            generate(tmp_path, seed=1, **kwargs)


@settings(max_examples=15, deadline=None)
@given(customers=st.integers(1, 60), days=st.integers(1, 4), seed=st.integers(0, 2**32),
       dirty_rate=st.sampled_from([0.0, 0.3]))
def test_tiny_runs_stay_inside_the_window(tmp_path_factory: pytest.TempPathFactory, customers: int, days: int,
                                          seed: int, dirty_rate: float) -> None:
    out = tmp_path_factory.mktemp("tiny")
    counts = generate(out, customers=customers, days=days, seed=seed, end_date=END, dirty_rate=dirty_rate)
    assert counts["customers"] == customers
    first = END - timedelta(days=days - 1)
    for kind, columns in TIMESTAMPS.items():
        for path in _files(out, kind):
            assert first <= date.fromisoformat(path.stem.removeprefix(f"{kind}_")) <= END
        frame = _read(out, kind)
        assert frame.height == counts[kind]
        if frame.height and dirty_rate == 0:
            for column in columns:
                assert frame.select((_utc(column) < CUTOFF) | pl.col(column).is_null()).to_series().all()
