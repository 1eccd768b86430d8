"""Pure Polars standardization steps. Each takes and returns frames; no I/O."""
from __future__ import annotations

import hashlib
from functools import lru_cache

import phonenumbers
import polars as pl

from pipeline.schemas import UTC_TS, SourceSchema

_TRUE = ["true", "1", "yes", "y", "t"]
_FALSE = ["false", "0", "no", "n", "f"]
_TYPE_NAMES = {UTC_TS: "timestamp", pl.Int8: "integer", pl.Int32: "integer", pl.Float64: "number", pl.Boolean: "boolean"}
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s.]+$"
# A country's default region lets national formats ("138 1234 5678") parse; CN is the fallback.
DEFAULT_PHONE_REGION = "CN"


def _typed(col: str, dtype: pl.DataType) -> pl.Expr:
    raw = pl.col(col).str.strip_chars()
    raw = pl.when(raw == "").then(None).otherwise(raw)
    if dtype == UTC_TS:
        return raw.str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    if dtype == pl.Boolean:
        low = raw.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
    if dtype == pl.String:
        return pl.col(col)
    return raw.cast(dtype, strict=False)


def cast_to_schema(raw: pl.DataFrame, schema: SourceSchema) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Types every canonical column from its raw text.

    Returns (typed rows, parse failures). A failure is a value that was present but could not be
    read as its type; those rows come back whole with `reason_detail` naming each bad column.
    """
    missing = [c for c in schema.columns if c not in raw.columns]
    if missing:
        raise ValueError(f"{schema.kind}: source is missing required columns {missing}")
    non_text = {c: t for c, t in schema.columns.items() if t != pl.String}
    # One context, so every expression reads the raw text rather than an already-typed column.
    problems = [
        pl.when(pl.col(c).str.strip_chars().fill_null("").ne("") & _typed(c, t).is_null()).then(
            pl.lit(f"{c}: not a valid {_TYPE_NAMES.get(t, t)}")
        )
        for c, t in non_text.items()
    ]
    typed = raw.with_columns(
        *(_typed(c, t).alias(c) for c, t in non_text.items()),
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
