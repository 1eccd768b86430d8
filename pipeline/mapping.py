"""Source columns -> canonical columns, as the source config says. Pure Polars; values stay text."""
from __future__ import annotations

import difflib

import polars as pl

from pipeline.schemas import SCHEMAS
from pipeline.sources import SourceConfig, expand_items

ITEM_PREFIX = "item:"  # Likert answers travel under this prefix until they are scored
DERIVED_PREFIX = "_derived:"  # derived fields evaluated ahead of mapping (derived_fields)


class SchemaDriftError(ValueError):
    """The export lacks a column the config maps or the schema requires: renamed or dropped upstream."""


def data_columns(frame: pl.DataFrame | pl.Schema) -> list[str]:
    """The export's own columns: not lineage or other `_` columns."""
    names = frame.names() if isinstance(frame, pl.Schema) else frame.columns
    return [c for c in names if not c.startswith("_")]


def check_columns(frame: pl.DataFrame, source: SourceConfig, where: str) -> None:
    """Fails fast, naming the file and the nearest column names, before any row is staged."""
    present = data_columns(frame)
    if not present:
        return
    schema = SCHEMAS[source.kind]
    wanted = {source.columns[c]: c for c in source.columns}
    for canonical in schema.required:
        if canonical not in source.columns and canonical not in source.derive and canonical not in source.constants:
            wanted.setdefault(canonical, canonical)
    wanted |= {col: "cancellation marker" for col in _marker_columns(source)}
    missing = [col for col in wanted if col not in present]
    if missing:
        hints = "; ".join(f"{col!r} ({wanted[col]}){_nearest(col, present)}" for col in missing)
        raise SchemaDriftError(f"{source.kind}: {where} lacks {hints} (columns found: {present})")
    if source.likert:
        expand_items(source.likert, present)


def _nearest(column: str, present: list[str]) -> str:
    """A hint for a renamed column: same letters ignoring case and punctuation first, then a close spelling."""
    def key(name: str) -> str:
        return "".join(ch for ch in name.lower() if ch.isalnum())

    same = [p for p in present if key(p) == key(column)]
    close = same or difflib.get_close_matches(column.lower(), [p.lower() for p in present], 1, 0.6)
    if not close:
        return ""
    match = same[0] if same else next(p for p in present if p.lower() == close[0])
    return f", did you mean {match!r}?"


def _marker_columns(source: SourceConfig) -> list[str]:
    rule = source.cancellations
    return [c for c in (rule.status_column, rule.id_column) if c] if rule else []


def _missing_as_null(frame: pl.DataFrame | pl.LazyFrame, columns: list[str], source: SourceConfig):
    """The source's missing-value markers ("NA", "-99", ...) read as no value."""
    if not source.missing_values:
        return frame
    return frame.with_columns(
        pl.when(pl.col(c).str.strip_chars().is_in(list(source.missing_values))).then(None).otherwise(pl.col(c)).alias(c)
        for c in columns
    )


def derived_fields(rows: pl.LazyFrame, source: SourceConfig, row_id: str) -> pl.DataFrame | None:
    """The source's derived fields over all of `rows`, in their order, keyed by `row_id` (first column).

    A derived expression may look across rows (ROW_NUMBER() OVER (PARTITION BY ...)), so a run that
    is mapped in chunks evaluates them here, once, over every row it maps."""
    derived = {c: e for c, e in source.derive.items() if c not in source.constants}
    if not derived:
        return None
    exprs = {c: pl.sql_expr(e) for c, e in derived.items()}
    roots = list(dict.fromkeys(r for e in exprs.values() for r in e.meta.root_names()))
    frame = _missing_as_null(rows.select(row_id, *roots), [r for r in roots if not r.startswith("_")], source)
    return frame.select(row_id, *(e.cast(pl.String).alias(c) for c, e in exprs.items())).collect()


def apply_mapping(raw: pl.DataFrame, source: SourceConfig, derived: pl.DataFrame | None = None) -> pl.DataFrame:
    """The canonical columns as text (absent optional ones null), Likert items, and the `_` columns.

    `derived`: the derived fields already evaluated (derived_fields), joined on its first column;
    without it they are evaluated over `raw`."""
    schema = SCHEMAS[source.kind]
    present = data_columns(raw)
    frame = _missing_as_null(raw, present, source)
    if derived is not None:
        key = derived.columns[0]
        frame = frame.join(derived.rename({c: DERIVED_PREFIX + c for c in derived.columns[1:]}), on=key, how="left",
                           maintain_order="left")
    targets = [*schema.columns, *schema.identity_columns]
    exprs = [canonical_column(c, source, present, evaluated=derived is not None).alias(c) for c in targets]
    if source.kind == "orders":
        exprs = [e for e, c in zip(exprs, targets) if c != "status"] + [order_status(source, present).alias("status")]
    items = expand_items(source.likert, present) if source.likert else {}
    item_exprs = [pl.col(i).alias(ITEM_PREFIX + i) for i in dict.fromkeys(i for v in items.values() for i in v)]
    lineage = [c for c in frame.columns if c.startswith("_") and not c.startswith(DERIVED_PREFIX)]
    return frame.select(*exprs, *item_exprs, *lineage)


def canonical_column(column: str, source: SourceConfig, present: list[str], *, evaluated: bool = False) -> pl.Expr:
    """A canonical column's text: a constant, a derived expression (or its `evaluated` value), the mapped
    or same-named column, or null."""
    if column in source.constants:
        return pl.lit(source.constants[column], pl.String)
    if column in source.derive:
        return pl.col(DERIVED_PREFIX + column) if evaluated else pl.sql_expr(source.derive[column]).cast(pl.String)
    name = source.columns.get(column, column)
    return pl.col(name).cast(pl.String) if name in present else pl.lit(None, pl.String)


def order_status(source: SourceConfig, present: list[str]) -> pl.Expr:
    """completed / cancelled / returned from the export's status values and/or an id prefix such as 'C'."""
    rule = source.cancellations
    status_col = (rule.status_column if rule and rule.status_column else None) or source.columns.get("status", "status")
    status = pl.col(status_col).str.strip_chars().str.to_lowercase() if status_col in present else pl.lit("completed")
    if rule and rule.status_values:
        mapped = pl.when(pl.lit(False)).then(pl.lit(None, pl.String))
        for canonical, values in rule.status_values.items():
            mapped = mapped.when(status.is_in([v.lower() for v in values])).then(pl.lit(canonical))
        status = mapped.otherwise(status)
    if rule and rule.id_prefix:
        status = pl.when(pl.col(rule.id_column).str.strip_chars().str.starts_with(rule.id_prefix)).then(
            pl.lit(rule.id_status)
        ).otherwise(status)
    return pl.when(status.is_null() | (status == "")).then(pl.lit("completed")).otherwise(status)


def likert_items(frame: pl.DataFrame, source: SourceConfig) -> dict[str, list[str]]:
    """Measure -> item columns (with the prefix) as they are in a mapped frame."""
    if not source.likert:
        return {}
    present = [c.removeprefix(ITEM_PREFIX) for c in frame.columns if c.startswith(ITEM_PREFIX)]
    return {m: [ITEM_PREFIX + i for i in items] for m, items in expand_items(source.likert, present).items()}
