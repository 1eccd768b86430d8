"""Pure Polars standardization steps. Each takes and returns frames; no I/O."""
from __future__ import annotations

import hashlib
from functools import lru_cache

import phonenumbers
import polars as pl

from pipeline.schemas import UTC_TS

_TRUE = ["true", "1", "yes", "y", "t"]
_FALSE = ["false", "0", "no", "n", "f"]
_TYPE_NAMES = {UTC_TS: "timestamp", pl.Int8: "integer", pl.Int32: "integer", pl.Float64: "number", pl.Boolean: "boolean (yes/no)"}
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
# A country's default region lets national formats ("138 1234 5678") parse; CN is the fallback.
DEFAULT_PHONE_REGION = "CN"


# ISO 8601 is always understood; an offset or Z wins over the source's configured time zone.
_ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _local_to_utc(naive: pl.Expr, tz: str) -> pl.Expr:
    # The repeated hour at a DST change is read as its first occurrence; the skipped hour cannot exist.
    return naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def parse_timestamp(text: pl.Expr, formats: tuple[str, ...] = (), tz: str = "UTC") -> pl.Expr:
    """Text to a UTC timestamp: the source's own formats first, then ISO 8601; naive values are in `tz`."""
    raw = text.str.strip_chars()
    iso = (
        raw.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"(?i)\s*(Z|UTC)$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
    )
    attempts = []
    for fmt in formats:
        parsed = raw.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC" if "%z" in fmt else None)
        attempts.append(parsed if "%z" in fmt else _local_to_utc(parsed, tz))
    attempts += [iso.str.to_datetime(f, strict=False, time_unit="us", time_zone="UTC") for f in _ISO_AWARE]
    attempts += [_local_to_utc(iso.str.to_datetime(f, strict=False, time_unit="us"), tz) for f in _ISO_NAIVE]
    return pl.coalesce(attempts)


def _typed(col: str, dtype: pl.DataType, formats: tuple[str, ...], tz: str) -> pl.Expr:
    raw = pl.col(col).str.strip_chars()
    raw = pl.when(raw == "").then(None).otherwise(raw)
    if dtype == UTC_TS:
        return parse_timestamp(raw, formats, tz)
    if dtype == pl.Boolean:
        low = raw.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
    if dtype == pl.String:
        return pl.col(col)
    if dtype.is_integer():  # "3.0" from a spreadsheet is the integer 3; "3.5" is not an integer
        number = raw.cast(pl.Float64, strict=False)
        return pl.when(number == number.round()).then(number).otherwise(None).cast(dtype, strict=False)
    return raw.cast(dtype, strict=False)


def cast_to_schema(
    raw: pl.DataFrame, columns: dict[str, pl.DataType], formats: tuple[str, ...] = (), tz: str = "UTC"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Types each of `columns` from its raw text.

    Returns (typed rows, parse failures). A failure is a value that was present but could not be
    read as its type; those rows come back whole with `reason_detail` naming each bad column.
    """
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"columns {missing} are missing")
    non_text = {c: t for c, t in columns.items() if t != pl.String}
    # One context, so every expression reads the raw text rather than an already-typed column.
    problems = [
        pl.when(pl.col(c).str.strip_chars().fill_null("").ne("") & _typed(c, t, formats, tz).is_null()).then(
            pl.lit(f"{c}: not a valid {_TYPE_NAMES.get(t, t)}")
        )
        for c, t in non_text.items()
    ]
    typed = raw.with_columns(
        *(_typed(c, t, formats, tz).alias(c) for c, t in non_text.items()),
        pl.concat_str(problems, separator="; ", ignore_nulls=True).alias("reason_detail")
        if problems
        else pl.lit(None, pl.String).alias("reason_detail"),
    )
    failed = pl.col("reason_detail").fill_null("").ne("")
    return typed.filter(~failed).drop("reason_detail"), typed.filter(failed)


def normalize_text(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """NFKC folds full-width Latin and digits to ASCII while leaving Chinese characters intact."""
    return df.with_columns(pl.col(c).str.normalize("NFKC").str.strip_chars() for c in columns if c in df.columns)


def normalize_email(df: pl.DataFrame, col: str = "email") -> pl.DataFrame:
    """Lower-cases; an address that is not plausibly valid becomes null and is flagged, not dropped."""
    email = pl.col(col).str.strip_chars().str.to_lowercase()
    valid = email.str.contains(EMAIL_PATTERN).fill_null(False)
    return df.with_columns(pl.when(valid).then(email).otherwise(None).alias(col), valid.alias(f"is_{col}_valid"))


@lru_cache(maxsize=None)
def _e164(number: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(df: pl.DataFrame, col: str = "phone", region_col: str = "country") -> pl.DataFrame:
    """Phone to E.164 with Google's libphonenumber rules, using the customer's country for national formats."""
    regions = df[region_col].fill_null(DEFAULT_PHONE_REGION).str.to_uppercase() if region_col in df.columns else None
    numbers = df[col].to_list()
    regs = regions.to_list() if regions is not None else [DEFAULT_PHONE_REGION] * len(numbers)
    e164 = pl.Series(col, [_e164(n, r) if n else None for n, r in zip(numbers, regs)], dtype=pl.String)
    return df.with_columns(e164, e164.is_not_null().alias(f"is_{col}_valid"))


def convert_currency(df: pl.DataFrame, rates: pl.DataFrame, amount_cols: list[str]) -> pl.DataFrame:
    """Adds `<col>_base` per amount column; an unknown currency leaves it null (the suite rejects it)."""
    joined = df.join(rates.select("currency", "rate_to_base"), on="currency", how="left")
    return joined.with_columns((pl.col(c) * pl.col("rate_to_base")).alias(f"{c}_base") for c in amount_cols).drop(
        "rate_to_base"
    )


def split_exact_duplicates(df: pl.DataFrame, columns: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keeps the first copy of rows identical on `columns`; returns (kept, later copies)."""
    ordered = df.sort("_batch_date", "_row_number")
    first = pl.struct(columns).is_first_distinct()
    return ordered.filter(first), ordered.filter(~first)


def split_superseded(df: pl.DataFrame, key: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Latest version of each business key wins (by batch date, then position in the file)."""
    ordered = df.sort("_batch_date", "_row_number")
    latest = pl.struct(key).is_last_distinct()
    return ordered.filter(latest), ordered.filter(~latest)


def salted_hash(values: pl.Series, salt: str) -> pl.Series:
    """Stable pseudonymous key for PII; the salt keeps it from being reversed by dictionary lookup."""
    salt_b = salt.encode()
    out = [hashlib.sha256(salt_b + v.encode()).hexdigest() if v is not None else None for v in values.to_list()]
    return pl.Series(values.name, out, dtype=pl.String)


def mask_email(values: pl.Series) -> pl.Series:
    """'li.wei@example.cn' -> 'l***@example.cn' for quarantine rows an engineer may read."""
    return values.str.replace(r"^(.)[^@]*(@.*)$", "${1}***${2}")


def mask_phone(values: pl.Series) -> pl.Series:
    """Keeps the last two digits: enough to tell two numbers apart in a triage, not to call them."""
    return values.str.slice(0, values.str.len_chars() - 2).str.replace_all(r"\d", "*") + values.str.slice(-2)


def mask_name(values: pl.Series) -> pl.Series:
    """'Li Wei' -> 'L*** W***': a person's name is personal data like their email."""
    return values.str.replace_all(r"(\w)\w*", "${1}***")


# Emails and phone numbers inside free text: international (+...), with an area code in
# parentheses, space- or dot-grouped, or dash-grouped 3-3/4-4; ISO dates and amounts do not match.
_EMAIL_IN_TEXT = r"([A-Za-z0-9])[A-Za-z0-9._%+-]*(@[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
_PHONE_IN_TEXT = (r"(?:\+\d[\d ().-]{6,}|\(\d+\)[\d .-]{5,}|\d{2,4}[ .]\d{3,4}[ .]\d{1,2}|\d{3}-\d{3,4}-\d{2})"
                  r"(\d\d)")


def mask_text(values: pl.Series) -> pl.Series:
    """Masks emails and phone numbers wherever they sit in a text, e.g. the fields of a row the reader
    could not split into columns."""
    return values.str.replace_all(_EMAIL_IN_TEXT, "${1}***${2}").str.replace_all(_PHONE_IN_TEXT, "***${1}")


def rescale(value: pl.Expr, source: tuple[float, float], target: tuple[float, float]) -> pl.Expr:
    """Linear map of an answer range onto the common one: 1-10 -> 1-7 sends 1 to 1, 10 to 7.

    An answer inside its range lands inside the target range. Without the clip, rounding could carry it
    past the end: Polars divides by a scalar as a multiplication by its reciprocal, so 1-100 -> 1-7 sent
    100 to 7.000000000000001. Answers outside the source range are mapped linearly, unclipped; callers
    flag or drop them.
    """
    (lo, hi), (a, b) = source, target
    mapped = a + (value - lo) * (b - a) / (hi - lo)
    return pl.when(value.is_between(lo, hi)).then(mapped.clip(min(a, b), max(a, b))).otherwise(mapped)


def likert_measures(
    frame: pl.DataFrame, items: dict[str, list[str]], ranges: dict[str, tuple[float, float]],
    scales: dict[str, tuple[float, float]],
) -> pl.DataFrame:
    """Adds `<measure>_score` (mean of the measure's rescaled items, nulls skipped) and
    `are_likert_answers_in_range` (false when any answer lies outside its item's range)."""
    in_range = [
        pl.col(i).is_null() | pl.col(i).is_between(*ranges[i]) for items_ in items.values() for i in items_
    ]
    scores = [
        pl.mean_horizontal(
            pl.when(pl.col(i).is_between(*ranges[i])).then(rescale(pl.col(i), ranges[i], scales[m])) for i in item_list
        ).alias(f"{m}_score")
        for m, item_list in items.items()
    ]
    return frame.with_columns(*scores, pl.all_horizontal(in_range).alias("are_likert_answers_in_range"))


def likert_answers(frame: pl.DataFrame, items: dict[str, list[str]], ranges: dict[str, tuple[float, float]],
                   scales: dict[str, tuple[float, float]], key: list[str]) -> pl.DataFrame:
    """One row per response per answered item: the raw answer and its rescaled score."""
    parts = [
        frame.select(
            *key, pl.lit(item).alias("item"), pl.lit(measure).alias("measure"), pl.col(item).alias("raw_value"),
            rescale(pl.col(item), ranges[item], scales[measure]).alias("score"),
        )
        for measure, item_list in items.items() for item in item_list
    ]
    if not parts:
        return pl.DataFrame()
    return pl.concat(parts).filter(pl.col("raw_value").is_not_null()).sort(*key, "measure", "item")


def _identifier_hash(frame: pl.DataFrame, kind: str, salt: str) -> pl.Series:
    """The salted hash of a row's normalized email or phone, comparable with the customer master's."""
    col = f"customer_{kind}"
    if kind == "email":
        normalized = normalize_email(frame.select(pl.col(col).alias("email")))["email"]
    else:
        region = [pl.col("customer_country").alias("country")] if "customer_country" in frame.columns else []
        normalized = normalize_phone(frame.select(pl.col(col).alias("phone"), *region))["phone"]
    return salted_hash(normalized, salt).alias(f"{kind}_hash")


def resolve_customer(frame: pl.DataFrame, registry: pl.DataFrame, salt: str) -> pl.DataFrame:
    """One customer key across sources: the row's own customer id, else the customer whose hashed email,
    else hashed phone, matches. `customer_match` says which one matched (null when none did).

    `registry` holds customer_id, email_hash, phone_hash; an identifier shared by several customers
    resolves to the smallest id, so the result does not depend on row order.
    """
    out = frame
    for kind in ("email", "phone"):
        col = f"customer_{kind}"
        if col not in out.columns or out[col].null_count() == out.height:
            continue
        lookup = registry.select(f"{kind}_hash", "customer_id").drop_nulls().group_by(f"{kind}_hash").agg(
            pl.col("customer_id").min().alias(f"_by_{kind}")
        )
        out = out.with_columns(_identifier_hash(out, kind, salt)).join(lookup, on=f"{kind}_hash", how="left")
        out = out.drop(f"{kind}_hash")
    by = [c for c in ("email", "phone") if f"_by_{c}" in out.columns]
    match = pl.when(pl.col("customer_id").is_not_null()).then(pl.lit("customer_id"))
    for c in by:
        match = match.when(pl.col(f"_by_{c}").is_not_null()).then(pl.lit(c))
    return out.with_columns(
        pl.coalesce("customer_id", *(f"_by_{c}" for c in by)).alias("customer_id"),
        match.otherwise(None).alias("customer_match"),
    ).drop(*(f"_by_{c}" for c in by), "customer_email", "customer_phone", strict=False)
