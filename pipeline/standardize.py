"""Pure Polars standardization steps. Each takes and returns frames; no I/O."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
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
# Text the ISO rewrite below leaves unchanged: no whitespace and no trailing Z/UTC. Such rows are read
# straight away, saving three regex rewrites of the column in the common case.
_NOT_ISO_AS_IS = r"\s|(?i:z|utc)$"


def _local_to_utc(naive: pl.Expr, tz: str) -> pl.Expr:
    # The repeated hour at a DST change is read as its first occurrence; the skipped hour cannot exist.
    return naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def _iso(text: pl.Expr) -> pl.Expr:
    return (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2})[ T]", "${1}T")
        .str.replace(r"(?i)\s*(Z|UTC)$", "+00:00")
        .str.replace(r"\s+([+-]\d{2}:?\d{2})$", "${1}")
    )


def _to_utc(text: pl.Expr, fmt: str, tz: str) -> pl.Expr:
    if "%z" in fmt:
        return text.str.to_datetime(fmt, strict=False, time_unit="us", time_zone="UTC")
    return _local_to_utc(text.str.to_datetime(fmt, strict=False, time_unit="us"), tz)


def parse_timestamps(text: pl.Series, formats: tuple[str, ...] = (), tz: str = "UTC") -> pl.Series:
    """Text to UTC timestamps: the source's own formats first, then ISO 8601; naive values are in `tz`.

    The first format that reads a value wins. Each format is tried only on the rows every earlier one
    left unread, so a clean column costs one parse instead of one per format.
    """
    todo = pl.DataFrame({"t": text.cast(pl.String).str.strip_chars()}).with_row_index("i").filter(pl.col("t").is_not_null())
    # (format, column read, rows it may read): "iso" is the text rewritten to ISO 8601, made when first needed.
    attempts = [(fmt, "t", None) for fmt in formats]
    attempts.append((_ISO_AWARE[0], "t", ~pl.col("t").str.contains(_NOT_ISO_AS_IS)))
    attempts += [(fmt, "iso", None) for fmt in (*_ISO_AWARE, *_ISO_NAIVE)]
    parts = []
    for fmt, column, only in attempts:
        if todo.is_empty():
            break
        if column == "iso" and "iso" not in todo.columns:
            todo = todo.with_columns(_iso(pl.col("t")).alias("iso"))
        parsed = _to_utc(pl.col(column), fmt, tz)
        tried = todo.with_columns((parsed if only is None else pl.when(only).then(parsed)).alias("v"))
        parts.append(tried.select("i", "v").filter(pl.col("v").is_not_null()))
        todo = tried.filter(pl.col("v").is_null()).drop("v")
    out = pl.Series(text.name, dtype=UTC_TS).extend_constant(None, len(text))
    found = pl.concat(parts) if parts else None
    return out.scatter(found["i"], found["v"]) if found is not None and found.height else out


def parse_timestamp(text: pl.Expr, formats: tuple[str, ...] = (), tz: str = "UTC") -> pl.Expr:
    """parse_timestamps as an expression."""
    return text.map_batches(lambda s: parse_timestamps(s, formats, tz), return_dtype=UTC_TS, is_elementwise=True)


def _text(col: str) -> pl.Expr:
    """A value's text, trimmed; empty text is no value."""
    raw = pl.col(col).str.strip_chars()
    return pl.when(raw == "").then(None).otherwise(raw)


def _typed(col: str, dtype: pl.DataType) -> pl.Expr:
    """A column of text as `dtype` (timestamps aside); unreadable values become null."""
    raw = _text(col)
    if dtype == pl.Boolean:
        low = raw.str.to_lowercase()
        return pl.when(low.is_in(_TRUE)).then(True).when(low.is_in(_FALSE)).then(False).otherwise(None)
    if dtype == pl.String:
        return pl.col(col)
    if dtype.is_integer():  # "3.0" from a spreadsheet is the integer 3; "3.5" is not an integer
        number = raw.cast(pl.Float64, strict=False)
        return pl.when(number == number.round()).then(number).otherwise(None).cast(dtype, strict=False)
    return raw.cast(dtype, strict=False)


# Integers a float holds exactly: text that reads directly as one gives what _typed gives.
_SMALL_INTEGERS = (pl.Int8, pl.Int16, pl.Int32, pl.UInt8, pl.UInt16, pl.UInt32)


def typed_values(values: pl.Series, dtype: pl.DataType, formats: tuple[str, ...] = (), tz: str = "UTC") -> pl.Series:
    """Text as `dtype`; unreadable values become null. Numbers written plainly are read in one cast;
    only the rest (padded, "3.0" for an integer, ...) take the full route of _typed."""
    if dtype == UTC_TS:
        return parse_timestamps(values, formats, tz)
    if dtype != pl.Float64 and dtype not in _SMALL_INTEGERS:
        return values.to_frame("v").select(_typed("v", dtype)).to_series().alias(values.name)
    direct = values.cast(dtype, strict=False)
    retry = (direct.is_null() & values.is_not_null()).arg_true()
    if not len(retry):
        return direct
    rest = values.gather(retry).to_frame("v").select(_typed("v", dtype)).to_series()
    return direct.scatter(retry, rest)


def cast_to_schema(
    raw: pl.DataFrame, columns: dict[str, pl.DataType], formats: tuple[str, ...] = (), tz: str = "UTC"
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Types each of `columns` from its raw text.

    Returns (typed rows, parse failures). A failure is a value that was present but could not be
    read as its type; those rows come back whole with `reason_detail` naming each bad column.
    Each column is typed once; only the values it left null are looked at again, to tell a missing
    value from an unreadable one.
    """
    missing = [c for c in columns if c not in raw.columns]
    if missing:
        raise ValueError(f"columns {missing} are missing")
    non_text = {c: t for c, t in columns.items() if t != pl.String}
    typed, problems = {}, []
    for order, (c, t) in enumerate(non_text.items()):
        typed[c] = typed_values(raw[c], t, formats, tz).alias(c)
        nulls = typed[c].is_null().arg_true()
        text = raw[c].gather(nulls).str.strip_chars()
        unreadable = nulls.filter(text.is_not_null() & (text != ""))
        if len(unreadable):
            problems.append(pl.DataFrame({"_i": unreadable, "_k": order,
                                          "reason_detail": f"{c}: not a valid {_TYPE_NAMES.get(t, t)}"}))
    frame = raw.with_columns(typed.values())
    if not problems:
        return frame, frame.clear().with_columns(pl.lit(None, pl.String).alias("reason_detail"))
    details = (pl.concat(problems).sort("_i", "_k").group_by("_i", maintain_order=True)
               .agg(pl.col("reason_detail").str.join("; ")))
    failed = pl.repeat(False, frame.height, eager=True).scatter(details["_i"], True)
    return frame.filter(~failed), frame.filter(failed).with_columns(details["reason_detail"])


def _nfkc(values: pl.Series) -> pl.Series:
    """NFKC, applied only to the values that are not pure ASCII (which NFKC leaves as they are)."""
    wide = values.str.contains(r"[^\x00-\x7F]").fill_null(False).arg_true()
    return values.scatter(wide, values.gather(wide).str.normalize("NFKC")) if len(wide) else values


def normalize_text(df: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """NFKC folds full-width Latin and digits to ASCII while leaving Chinese characters intact."""
    return df.with_columns(_nfkc(df[c]).str.strip_chars().alias(c) for c in columns if c in df.columns)


def normalize_email(df: pl.DataFrame, col: str = "email") -> pl.DataFrame:
    """Lower-cases; an address that is not plausibly valid becomes null and is flagged, not dropped."""
    email = pl.col(col).str.strip_chars().str.to_lowercase()
    valid = email.str.contains(EMAIL_PATTERN).fill_null(False)
    return df.with_columns(pl.when(valid).then(email).otherwise(None).alias(col), valid.alias(f"is_{col}_valid"))


@lru_cache(maxsize=1 << 16)
def _e164(number: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# The vectorized path below mirrors phonenumbers.parse + is_valid_number + E.164 formatting for the
# common shape (digits and " ().-" separators, optionally one leading "+"), with the patterns and
# lengths of phonenumbers' own metadata. Anything off that path (letters, extensions, IDD prefixes,
# national prefix transforms, a national number starting with the country code, ...) is left to
# phonenumbers itself, so results are libphonenumber's either way.
_PHONE_SHAPE = r"^\+?[0-9 ().\-]+$"
_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
               "fixed_line")


@dataclass(frozen=True)
class _Desc:
    pattern: str  # anchored for a full match
    lengths: tuple[int, ...]  # possible lengths; empty: any


@dataclass(frozen=True)
class _Plan:
    """What parsing and validation need of one region's metadata."""
    country_code: int
    idd: str | None  # international dialling prefix, anchored
    national_prefix: str | None  # national_prefix_for_parsing, anchored
    has_transform: bool
    groups: int  # capturing groups of national_prefix
    general: _Desc | None
    general_local: tuple[int, ...]
    types: tuple[_Desc, ...]  # _number_type_helper's descs after the general one
    leading_digits: str | None


def _desc(desc) -> _Desc | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return _Desc(f"^(?:{desc.national_number_pattern})$", tuple(desc.possible_length or ()))


@lru_cache(maxsize=None)
def _plan(region: str) -> _Plan | None:
    meta = phonenumbers.PhoneMetadata.metadata_for_region(region, None)
    if meta is None:
        return None
    descs = [getattr(meta, name) for name in _TYPE_DESCS]
    if not meta.same_mobile_and_fixed_line_pattern:
        descs.append(meta.mobile)
    prefix = meta.national_prefix_for_parsing or None
    return _Plan(
        country_code=meta.country_code,
        idd=f"^(?:{meta.international_prefix})" if meta.international_prefix else None,
        national_prefix=f"^(?:{prefix})" if prefix else None,
        has_transform=bool(meta.national_prefix_transform_rule),
        groups=re.compile(prefix).groups if prefix else 0,
        general=_desc(meta.general_desc),
        general_local=tuple(meta.general_desc.possible_length_local_only or ()),
        types=tuple(d for d in map(_desc, descs) if d is not None),
        leading_digits=f"^(?:{meta.leading_digits})" if meta.leading_digits else None,
    )


def _full_match(number: pl.Expr, desc: _Desc | None, *, lengths: bool) -> pl.Expr:
    """phonenumbers' _is_number_matching_desc (lengths=True) or _match_national_number (False)."""
    if desc is None:
        return pl.lit(False)
    matched = number.str.contains(desc.pattern)
    return matched & number.str.len_chars().is_in(desc.lengths) if lengths and desc.lengths else matched


def _is_valid_type(nsn: pl.Expr, plan: _Plan) -> pl.Expr:
    """_number_type_helper(...) != UNKNOWN."""
    types = [_full_match(nsn, d, lengths=True) for d in plan.types]
    return _full_match(nsn, plan.general, lengths=True) & (pl.any_horizontal(types) if types else pl.lit(False))


def _strip_national_prefix(x: pl.Expr, plan: _Plan) -> tuple[pl.Expr, pl.Expr]:
    """(national significant number, handled) after parse's national-prefix step on digits `x`."""
    if plan.national_prefix is None:
        return x, pl.lit(True)
    prefix = x.str.extract(plan.national_prefix, 0)
    stripped = x.str.slice(prefix.str.len_chars().fill_null(0))
    handled = pl.lit(True)
    if plan.has_transform and plan.groups:  # a transform applies when the last group took part
        handled = x.str.extract(plan.national_prefix, plan.groups).is_null()
    keep_original = _full_match(x, plan.general, lengths=False) & ~_full_match(stripped, plan.general, lengths=False)
    potential = pl.when(prefix.is_not_null() & ~keep_original).then(stripped).otherwise(x)
    # _test_number_length: the stripped number must be a possible length, or too long.
    lengths = plan.general.lengths if plan.general else ()
    n = potential.str.len_chars()
    possible = ~n.is_in(plan.general_local) & (
        ((n == lengths[0]) | (n > lengths[-1]) | n.is_in(lengths[1:])) if lengths else pl.lit(False)
    )
    return pl.when(possible).then(potential).otherwise(x), handled


def _valid_for_code(nsn: pl.Expr, code: int) -> pl.Expr:
    """is_valid_number for a country calling code shared by one or more regions."""
    regions = [(r, _plan(r)) for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())]
    regions = [(r, p) for r, p in regions if p is not None]
    if len(regions) == 1:
        return _is_valid_type(nsn, regions[0][1])
    valid = pl.when(pl.lit(False)).then(pl.lit(False))
    for _, plan in regions:  # _region_code_for_number_from_list: leading digits, else full validation
        chosen = nsn.str.contains(plan.leading_digits) if plan.leading_digits else _is_valid_type(nsn, plan)
        valid = valid.when(chosen).then(_is_valid_type(nsn, plan))
    return valid.otherwise(False)


def _country_code(digits: pl.Expr) -> pl.Expr:
    """The 1-3 digit prefix that is a country calling code (they are prefix-free), else null."""
    codes = [str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE]
    expr = pl.lit(None, pl.String)
    for n in (3, 2, 1):  # the shortest match wins, as in _extract_country_code
        head = digits.str.head(n)
        expr = pl.when(head.is_in(codes) & ~digits.str.starts_with("0")).then(head).otherwise(expr)
    return expr.cast(pl.Int32)


def _e164_vectorized(numbers: pl.Series, regions: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(E.164 or null, whether this path decided the row); undecided rows go to phonenumbers."""
    base = pl.DataFrame({"s": numbers.str.strip_chars(), "region": regions}).with_row_index("i")
    shaped = base.filter(pl.col("s").str.contains(_PHONE_SHAPE) & (pl.col("s").str.len_chars() <= 250))
    shaped = shaped.with_columns(
        pl.col("s").str.starts_with("+").alias("plus"), pl.col("s").str.replace_all(r"[^0-9]", "").alias("digits")
    ).filter(pl.col("digits").str.len_chars().is_between(3, 17))
    plus = shaped.filter("plus").with_columns(_country_code(pl.col("digits")).alias("code"))
    # National numbers: the customer's region gives the calling code and the prefixes to strip;
    # those starting with an international prefix or with the calling code itself are left over.
    national = []
    for region in shaped["region"].unique().drop_nulls().to_list():
        plan = _plan(region) if region in phonenumbers.SUPPORTED_REGIONS else None
        if plan is None:
            continue
        rows = shaped.filter(~pl.col("plus") & (pl.col("region") == region))
        idd = rows["digits"].str.contains(plan.idd) if plan.idd else pl.repeat(False, rows.height, eager=True)
        rows = rows.filter(~idd & ~rows["digits"].str.starts_with(str(plan.country_code)))
        national.append(rows.with_columns(pl.lit(plan.country_code, pl.Int32).alias("code"), pl.lit(region).alias("meta"),
                                          pl.col("digits").alias("x")))
    # "+" numbers: the calling code's main region gives the national prefix (non-geographic codes are left over).
    international = []
    for code in plus["code"].unique().drop_nulls().to_list():
        region = phonenumbers.region_code_for_country_code(code)
        if region in phonenumbers.SUPPORTED_REGIONS:
            international.append(plus.filter(pl.col("code") == code).with_columns(
                pl.lit(region).alias("meta"), pl.col("digits").str.slice(len(str(code))).alias("x")))
    decided = []
    for part in national + international:
        if part.is_empty():
            continue
        plan = _plan(part["meta"][0])
        nsn, handled = _strip_national_prefix(pl.col("x"), plan)
        part = part.with_columns(nsn.alias("nsn"), handled.alias("handled")).filter(
            pl.col("handled") & pl.col("x").str.len_chars().ge(2) & pl.col("nsn").str.len_chars().is_between(2, 17))
        for code in part["code"].unique().to_list():
            rows = part.filter(pl.col("code") == code)
            decided.append(rows.select("i", pl.when(_valid_for_code(pl.col("nsn"), code)).then(
                pl.concat_str(pl.lit(f"+{code}"), pl.col("nsn"))).otherwise(None).alias("e164")))
    found = pl.concat(decided) if decided else pl.DataFrame(schema={"i": pl.UInt32, "e164": pl.String})
    out = base.select("i").join(found, on="i", how="left", maintain_order="left")
    handled = out["i"].is_in(found["i"].implode())
    return out["e164"], handled


def normalize_phone(df: pl.DataFrame, col: str = "phone", region_col: str = "country") -> pl.DataFrame:
    """Phone to E.164 with Google's libphonenumber rules, using the customer's country for national formats.

    The common shapes are read in Polars from libphonenumber's metadata; the rest by phonenumbers."""
    regions = (df[region_col].fill_null(DEFAULT_PHONE_REGION).str.to_uppercase() if region_col in df.columns
               else pl.Series([DEFAULT_PHONE_REGION] * df.height, dtype=pl.String))
    numbers = df[col].cast(pl.String)
    fast, handled = _e164_vectorized(numbers, regions)
    rest = (~handled & numbers.is_not_null() & (numbers != "")).arg_true()
    slow = [_e164(n, r) for n, r in zip(numbers.gather(rest).to_list(), regions.gather(rest).to_list())]
    e164 = fast.scatter(rest, pl.Series(slow, dtype=pl.String)).alias(col) if len(rest) else fast.alias(col)
    return df.with_columns(e164, e164.is_not_null().alias(f"is_{col}_valid"))


def convert_currency(df: pl.DataFrame, rates: pl.DataFrame, amount_cols: list[str]) -> pl.DataFrame:
    """Adds `<col>_base` per amount column; an unknown currency leaves it null (the suite rejects it)."""
    if rates["currency"].is_duplicated().any():  # a join would repeat rows: keep that visible
        joined = df.join(rates.select("currency", "rate_to_base"), on="currency", how="left", maintain_order="left")
        return joined.with_columns((pl.col(c) * pl.col("rate_to_base")).alias(f"{c}_base") for c in amount_cols).drop(
            "rate_to_base")
    rate = pl.col("currency").replace_strict(rates["currency"], rates["rate_to_base"], default=None, return_dtype=pl.Float64)
    return df.with_columns((pl.col(c) * rate).alias(f"{c}_base") for c in amount_cols)


def exact_duplicate_ids(rows: pl.LazyFrame, columns: list[str], row_id: str) -> pl.Series:
    """Ids of the rows identical on `columns` to an earlier row (by batch date, then row number).

    Only a hash per row is held for all of `rows`; the rows whose hash another row shares are then
    compared in full, so a hash collision never makes a row a duplicate."""
    none = pl.Series(row_id, [], dtype=pl.Int64)
    if not columns:
        return none
    hashes = rows.select(row_id, pl.struct(columns).hash().alias("_hash")).collect(engine="streaming")
    shared = hashes.filter(pl.col("_hash").is_duplicated())[row_id]
    if shared.is_empty():
        return none
    suspects = rows.filter(pl.col(row_id).is_in(shared.implode())).select(row_id, "_batch_date", "_row_number", *columns)
    ordered = suspects.collect().sort("_batch_date", "_row_number")
    return ordered.filter(~pl.struct(columns).is_first_distinct())[row_id].cast(pl.Int64)


def split_superseded(df: pl.DataFrame, key: list[str], *, ordered: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Latest version of each business key wins (by batch date, then position in the file);
    `ordered`: the rows are in that order already."""
    rows = df if ordered else df.sort("_batch_date", "_row_number")
    latest = rows.select(pl.struct(key).is_last_distinct()).to_series()
    return (rows, rows.clear()) if latest.all() else (rows.filter(latest), rows.filter(~latest))


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
                   scales: dict[str, tuple[float, float]], key: list[str],
                   labels: dict[str, str] | None = None) -> pl.DataFrame:
    """One row per response per answered item: the raw answer and its rescaled score, ordered by
    `key`, measure and item column; `item` holds the column's label (default: its name).

    Responses are sorted, then spread by position (response i, item j is row i * items + j), so
    the long table is built by gathers and never sorted itself."""
    pairs = sorted((measure, item) for measure, item_list in items.items() for item in item_list)
    if not pairs:
        return pl.DataFrame()
    wide = frame.sort(*key)
    columns = [item for _, item in pairs]  # an item may serve several measures

    def row_major(values: list[pl.Expr]) -> np.ndarray:  # response i, pair j at i * len(pairs) + j
        return wide.select(v.alias(str(j)) for j, v in enumerate(values)).to_numpy(order="c").ravel()

    answered = np.flatnonzero(row_major([pl.col(c).is_not_null() for c in columns]))
    n = len(pairs)
    return wide.select(key).gather(answered // n).with_columns(
        pl.Series("item", [(labels or {}).get(c, c) for c in columns], dtype=pl.String).gather(answered % n),
        pl.Series("measure", [measure for measure, _ in pairs]).gather(answered % n),
        pl.Series("raw_value", row_major([pl.col(c) for c in columns])[answered], dtype=pl.Float64),
        pl.Series("score", row_major([rescale(pl.col(i), ranges[i], scales[m]) for m, i in pairs])[answered], dtype=pl.Float64),
    )


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
        out = out.with_columns(_identifier_hash(out, kind, salt)).join(lookup, on=f"{kind}_hash", how="left",
                                                                        maintain_order="left")
        out = out.drop(f"{kind}_hash")
    by = [c for c in ("email", "phone") if f"_by_{c}" in out.columns]
    match = pl.when(pl.col("customer_id").is_not_null()).then(pl.lit("customer_id"))
    for c in by:
        match = match.when(pl.col(f"_by_{c}").is_not_null()).then(pl.lit(c))
    return out.with_columns(
        pl.coalesce("customer_id", *(f"_by_{c}" for c in by)).alias("customer_id"),
        match.otherwise(None).alias("customer_match"),
    ).drop(*(f"_by_{c}" for c in by), "customer_email", "customer_phone", strict=False)
