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
    frame = pl.DataFrame({"a": [1, 1, 2, None, None], "b": ["x", "x", "x", None, None], "_batch_date": ["d"] * 5,
                          "_row_number": [3, 1, 2, 5, 4], "_rid": [0, 1, 2, 3, 4]})
    assert std.exact_duplicate_ids(frame.lazy(), ["a", "b"], "_rid").to_list() == [0, 3]  # later copies; nulls match
    assert std.exact_duplicate_ids(frame.lazy(), ["b"], "_rid").sort().to_list() == [0, 2, 3]


def test_a_shared_hash_alone_does_not_make_a_duplicate(monkeypatch):
    """Rows are compared in full where their hashes meet: force every hash to collide."""
    frame = pl.DataFrame({"a": ["p", "q", "p"], "_batch_date": ["d"] * 3, "_row_number": [1, 2, 3], "_rid": [0, 1, 2]})
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *a, **k: pl.lit(7, pl.UInt64))
    assert std.exact_duplicate_ids(frame.lazy(), ["a"], "_rid").to_list() == [2]


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


def ts(values, formats=(), tz="UTC"):
    return pl.DataFrame({"t": values}).select(std.parse_timestamp(pl.col("t"), formats, tz))["t"].to_list()


def test_timestamps_honour_offsets_and_read_naive_values_in_the_source_zone():
    utc = timezone.utc
    got = ts(["2025-01-15T10:00:00+08:00", "2025-01-15 10:00:00Z", "2025-07-15 10:00", "2025-07-15", "2025-07-15 10:00 +0200"],
             tz="Europe/London")
    assert got == [datetime(2025, 1, 15, 2, tzinfo=utc), datetime(2025, 1, 15, 10, tzinfo=utc),
                   datetime(2025, 7, 15, 9, tzinfo=utc), datetime(2025, 7, 14, 23, tzinfo=utc),
                   datetime(2025, 7, 15, 8, tzinfo=utc)]


def test_source_formats_come_first_and_dst_edges_are_defined():
    utc = timezone.utc
    assert ts(["09/12/2016"], ("%m/%d/%Y",), "America/New_York") == [datetime(2016, 9, 12, 4, tzinfo=utc)]
    # 01:30 happens twice when London leaves summer time: the first one is taken; 01:30 on the spring
    # change never happens and is unreadable.
    assert ts(["2025-10-26 01:30", "2025-03-30 01:30", "31/02/2025"], tz="Europe/London") == [
        datetime(2025, 10, 26, 0, 30, tzinfo=utc), None, None]


def test_likert_answers_are_rescaled_and_out_of_range_flagged():
    frame = pl.DataFrame({"q1": [1.0, 10.0, None, 11.0], "q2": [10.0, 10.0, 4.0, 5.0]})
    items, ranges = {"per_reliability": ["q1", "q2"]}, {"q1": (1.0, 10.0), "q2": (1.0, 10.0)}
    out = std.likert_measures(frame, items, ranges, {"per_reliability": (1.0, 7.0)})
    assert out["per_reliability_score"].to_list() == [4.0, 7.0, 3.0, pytest.approx(11 / 3)]
    assert out["are_likert_answers_in_range"].to_list() == [True, True, True, False]
    assert std.likert_answers(frame.head(1).with_columns(pl.lit("R1").alias("rid")), items, ranges,
                              {"per_reliability": (0.0, 10.0)}, ["rid"])["score"].to_list() == [0.0, 10.0]


def test_identity_resolution_prefers_id_then_email_then_phone():
    salt = "s"
    registry = pl.DataFrame({
        "customer_id": ["C1", "C2", "C3"],
        "email_hash": std.salted_hash(pl.Series(["a@x.cn", "b@x.cn", "b@x.cn"]), salt),  # b@ is shared: C2 wins
        "phone_hash": std.salted_hash(pl.Series(["+8613812345678", None, "+8613900001111"]), salt),
    })
    rows = pl.DataFrame({
        "customer_id": ["C9", None, None, None, None],
        "customer_email": ["a@x.cn", " A@X.CN ", "b@x.cn", None, "nobody@x.cn"],
        "customer_phone": [None, None, None, "139 0000 1111", None],
        "customer_country": ["CN"] * 5,
    })
    out = std.resolve_customer(rows, registry, salt)
    assert out["customer_id"].to_list() == ["C9", "C1", "C2", "C3", None]
    assert out["customer_match"].to_list() == ["customer_id", "email", "email", "phone", None]
    assert "customer_email" not in out.columns and "customer_phone" not in out.columns


def test_names_and_free_text_are_masked_for_quarantine_readers():
    assert std.mask_name(pl.Series(["Li Wei", None])).to_list() == ["L*** W***", None]
    text = '["C1","li.wei@example.cn","+44 20 7946 0064","(020) 7946 0064","2025-12-31 10:00:00","12.50"]'
    masked = std.mask_text(pl.Series([text]))[0]
    assert "li.wei" not in masked and "7946" not in masked
    assert "l***@example.cn" in masked and "2025-12-31 10:00:00" in masked and "12.50" in masked


def _random_phone(rng, region: str) -> str:
    """A number shaped as people write them: from the region's example with some digits changed,
    national or international, grouped with spaces, dashes, dots or parentheses."""
    import phonenumbers

    example = phonenumbers.example_number(region)
    nsn = "".join(c if rng.random() > 0.3 else str(rng.randint(0, 9)) for c in phonenumbers.national_significant_number(example))
    prefix = phonenumbers.PhoneMetadata.metadata_for_region(region).national_prefix or ""
    digits = rng.choice([f"+{example.country_code}{nsn}", prefix + nsn, nsn, f"{example.country_code}{nsn}"])
    groups, i = [], 0
    while i < len(digits):
        k = rng.randint(1, 4)
        groups.append(digits[i:i + k])
        i += k
    text = rng.choice([" ", "-", ".", ""]).join(groups)
    return f"({text[:3]}) {text[3:]}" if rng.random() < 0.1 and not text.startswith("+") else text


def test_vectorized_phones_are_what_libphonenumber_says():
    """The Polars path against phonenumbers itself, on random numbers of many regions (CN mobiles
    among them) written in the shapes that path reads."""
    import random

    rng = random.Random(5)
    regions = ["CN", "US", "GB", "DE", "FR", "JP", "IN", "BR", "AR", "RU", "KZ", "IT", "AU", "CA", "AG", "MX", "KR", "SG"]
    pairs = [(r, _random_phone(rng, r)) for r in regions for _ in range(150)]
    pairs += [("CN", f"1{rng.choice('3456789')}{rng.randint(0, 9)} {rng.randint(0, 9999):04d} {rng.randint(0, 9999):04d}")
              for _ in range(300)]
    frame = pl.DataFrame({"phone": [p for _, p in pairs], "country": [r for r, _ in pairs]})
    expected = [std._e164.__wrapped__(p, r) for r, p in pairs]
    fast, decided = std._e164_vectorized(frame["phone"], frame["country"])
    # Mostly the vectorized path; the rest (a national number that starts with its calling code, ...) phonenumbers.
    assert 0.6 < decided.mean() < 1
    assert std.normalize_phone(frame)["phone"].to_list() == expected
    assert sum(e is not None for e in expected) > 1000


def test_an_item_in_two_measures_is_an_answer_of_each():
    frame = pl.DataFrame({"rid": ["b", "a"], "q1": [2.0, None], "q2": [1.0, 7.0]})
    out = std.likert_answers(frame, {"m": ["q1", "q2"], "n": ["q1"]}, {"q1": (1.0, 7.0), "q2": (1.0, 7.0)},
                             {"m": (1.0, 7.0), "n": (0.0, 10.0)}, ["rid"])
    assert out.select("rid", "measure", "item").rows() == [("a", "m", "q2"), ("b", "m", "q1"), ("b", "m", "q2"), ("b", "n", "q1")]
    assert out["score"].to_list() == [7.0, 2.0, 1.0, pytest.approx(10 / 6)]
