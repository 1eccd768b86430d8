"""The declarative source configuration (YAML): where each kind of raw export lives, how to read it
and how its columns map onto the canonical schema. Format reference: docs/sources.md."""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import yaml

from pipeline.schemas import KINDS, LIKERT_MEASURES, SCHEMAS

FORMATS = {"csv", "jsonl", "parquet", "excel"}
ENCODINGS = {"utf-8", "utf-8-sig", "gb18030", "auto"}
MISSING_CUSTOMER_POLICIES = {"quarantine", "keep"}
ORDER_STATUSES = ("completed", "cancelled", "returned")
_ENV = re.compile(r"\$\{(\w+)\}")
# Schema-qualified SQL identifiers only: anything else in a table or column name is refused, never quoted through.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class SourceConfigError(ValueError):
    """The source YAML is malformed; the message names the file and the offending key."""


@dataclass(frozen=True)
class DatabaseLocation:
    url: str
    incremental_column: str
    table: str | None = None
    query: str | None = None  # the text of a .sql file, wrapped as a subquery

    @property
    def label(self) -> str:
        return f"table:{self.table}" if self.table else "query"


@dataclass(frozen=True)
class Cancellations:
    """How an export marks lines that are not purchases: a status column and/or an id prefix."""
    status_column: str | None = None
    status_values: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical status -> source values
    id_column: str | None = None
    id_prefix: str | None = None
    id_status: str = "cancelled"


@dataclass(frozen=True)
class Likert:
    """Survey items (source columns) grouped into measures, each item with its answer range."""
    measures: dict[str, tuple[str, ...]]  # e.g. per_reliability -> (PERQ2, PERQ6)
    ranges: dict[str, tuple[float, float]]  # item -> (low, high)

    @property
    def items(self) -> list[str]:
        return [item for items in self.measures.values() for item in items]


@dataclass(frozen=True)
class SourceConfig:
    kind: str
    format: str = "csv"
    # With a `{date}` placeholder: one file per day. Without: one export holding many days, whose rows
    # are batched by the date of their event timestamp.
    path_template: str | None = None
    database: DatabaseLocation | None = None
    encoding: str = "utf-8"
    delimiter: str = ","
    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical column -> source column
    derive: dict[str, str] = field(default_factory=dict)  # canonical column -> Polars SQL expression
    constants: dict[str, str] = field(default_factory=dict)  # canonical column -> literal value
    timezone: str = "UTC"
    datetime_formats: tuple[str, ...] = ()
    missing_values: tuple[str, ...] = ()
    cancellations: Cancellations | None = None
    missing_customer: str = "quarantine"
    likert: Likert | None = None
    max_quarantine_share: float = 0.05
    # How far after the end of the run's interval an event may be stamped and still be accepted: the
    # exporting host's clock runs ahead, or its day files are cut in a time zone west of UTC.
    max_clock_skew: timedelta = timedelta(0)

    @property
    def is_day_partitioned(self) -> bool:
        return self.path_template is not None and "{date}" in self.path_template

    @property
    def event_column(self) -> str:
        """The source column that places a row in time."""
        canonical = SCHEMAS[self.kind].event_at
        return self.columns.get(canonical, canonical)

    def path_for(self, day: date) -> Path:
        return Path(self.path_template.replace("{date}", day.isoformat()))

    def partitions(self) -> dict[date, Path]:
        """Every day partition present on disk, by the date embedded in its file name."""
        folder = Path(self.path_template).parent
        name = re.escape(Path(self.path_template).name).replace(r"\{date\}", r"(\d{4}-\d{2}-\d{2})")
        pattern = re.compile(name + "$")
        if not folder.is_dir():
            return {}
        found = {}
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match:
                found[date.fromisoformat(match.group(1))] = entry
        return dict(sorted(found.items()))


@dataclass(frozen=True)
class SourcesFile:
    path: Path
    sources: dict[str, SourceConfig]
    base_currency: str | None = None  # overrides the settings' base currency for this company


def _expand(value: str, origin: Path) -> str:
    def env(m: re.Match) -> str:
        if m.group(1) not in os.environ:
            raise SourceConfigError(f"{origin}: environment variable {m.group(1)} is not set")
        return os.environ[m.group(1)]

    return _ENV.sub(env, value)


def load_sources_file(path: Path) -> SourcesFile:
    path = Path(path)
    if not path.exists():
        raise SourceConfigError(f"source config {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SourceConfigError(f"{path}: not valid YAML: {exc}") from exc
    base = Path(_expand(str(doc.get("base_dir", ".")), path))
    base = base if base.is_absolute() else (path.parent / base).resolve()
    entries = doc.get("sources") or {}
    unknown = set(entries) - set(KINDS)
    if unknown:
        raise SourceConfigError(f"{path}: unknown source kinds {sorted(unknown)}; expected some of {list(KINDS)}")
    defaults = {k: doc[k] for k in ("timezone", "datetime_formats", "missing_values") if k in doc}
    sources = {kind: _source(kind, {**defaults, **(spec or {})}, base, path) for kind, spec in entries.items()}
    currency = doc.get("base_currency")
    return SourcesFile(path, sources, str(currency).upper() if currency else None)


def load_sources(path: Path) -> dict[str, SourceConfig]:
    return load_sources_file(path).sources


def _source(kind: str, spec: dict, base: Path, origin: Path) -> SourceConfig:
    where = f"{origin}: sources.{kind}"
    known = {"path", "database", "format", "encoding", "delimiter", "sheet", "columns", "derive", "constants",
             "timezone", "datetime_formats", "missing_values", "cancellations", "missing_customer", "likert",
             "max_quarantine_share", "max_clock_skew_hours", "currency"}
    if set(spec) - known:
        raise SourceConfigError(f"{where}: unknown keys {sorted(set(spec) - known)}")
    if ("path" in spec) == ("database" in spec):
        raise SourceConfigError(f"{where}: give exactly one of `path` or `database`")
    template = str(base / _expand(spec["path"], origin)) if "path" in spec else None
    if template and template.count("{date}") > 1:
        raise SourceConfigError(f"{where}.path may hold at most one {{date}} placeholder")
    fmt = spec.get("format", "csv")
    if fmt not in FORMATS:
        raise SourceConfigError(f"{where}.format must be one of {sorted(FORMATS)}, not {fmt!r}")
    encoding = str(spec.get("encoding", "utf-8")).lower().replace("_", "-")
    if encoding not in ENCODINGS:
        raise SourceConfigError(f"{where}.encoding must be one of {sorted(ENCODINGS)}, not {encoding!r}")
    share = float(spec.get("max_quarantine_share", 0.05))
    if not 0 <= share <= 1:
        raise SourceConfigError(f"{where}.max_quarantine_share must be within [0, 1]")
    skew = float(spec.get("max_clock_skew_hours", 0))
    if not 0 <= skew <= 48:
        raise SourceConfigError(f"{where}.max_clock_skew_hours must be within [0, 48]")
    policy = spec.get("missing_customer", "quarantine")
    if policy not in MISSING_CUSTOMER_POLICIES:
        raise SourceConfigError(f"{where}.missing_customer must be one of {sorted(MISSING_CUSTOMER_POLICIES)}")
    columns = _mapping(spec.get("columns"), f"{where}.columns")
    derive = _mapping(spec.get("derive"), f"{where}.derive")
    constants = _mapping(spec.get("constants"), f"{where}.constants")
    if "currency" in spec:  # shorthand for an export in one currency
        constants.setdefault("currency", str(spec["currency"]).upper())
    _check_targets(kind, [*columns, *derive, *constants], where)
    for target, expression in derive.items():
        _check_expression(expression, f"{where}.derive.{target}")
    database = _database(spec["database"], where, origin) if "database" in spec else None
    if database:
        for column in columns.values():
            _check_identifier(column, f"{where}.columns")
    return SourceConfig(
        kind=kind,
        format=fmt,
        path_template=template,
        database=database,
        encoding=encoding,
        delimiter=str(spec.get("delimiter", ",")),
        sheet=spec.get("sheet"),
        columns=columns,
        derive=derive,
        constants=constants,
        timezone=_timezone(spec.get("timezone", "UTC"), where),
        datetime_formats=tuple(str(f) for f in spec.get("datetime_formats", ())),
        missing_values=tuple(str(v) for v in spec.get("missing_values", ())),
        cancellations=_cancellations(spec.get("cancellations"), where),
        missing_customer=policy,
        likert=_likert(spec.get("likert"), where) if kind == "surveys" else None,
        max_quarantine_share=share,
        max_clock_skew=timedelta(hours=skew),
    )


def _mapping(value, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, (str, int, float)) for v in value.values()):
        raise SourceConfigError(f"{where} must map canonical column names to text")
    return {str(k): str(v) for k, v in value.items()}


def _check_targets(kind: str, targets: list[str], where: str) -> None:
    allowed = set(SCHEMAS[kind].columns) | set(SCHEMAS[kind].identity_columns)
    unknown = sorted(set(targets) - allowed)
    if unknown:
        raise SourceConfigError(f"{where}: {unknown} are not canonical {kind} columns; expected some of {sorted(allowed)}")


def _check_expression(expression: str, where: str) -> None:
    """Derived fields are Polars SQL expressions evaluated in memory: a parse error is a config error."""
    try:
        pl.sql_expr(expression)
    except Exception as exc:  # Polars raises several SQL error types
        raise SourceConfigError(f"{where}: {expression!r} is not a valid SQL expression: {exc}") from exc


def _check_identifier(name: str, where: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
        raise SourceConfigError(
            f"{where}: {name!r} is not a plain SQL identifier (letters, digits, _ and one optional schema dot)"
        )
    return name


def _timezone(name: str, where: str) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SourceConfigError(f"{where}.timezone: unknown time zone {name!r}") from exc
    return str(name)


def _database(spec: dict, where: str, origin: Path) -> DatabaseLocation:
    if not isinstance(spec, dict) or "url" not in spec or "incremental_column" not in spec:
        raise SourceConfigError(f"{where}.database needs `url` and `incremental_column`, plus `table` or `query_file`")
    if ("table" in spec) == ("query_file" in spec):
        raise SourceConfigError(f"{where}.database: give exactly one of `table` or `query_file`")
    query = None
    if "query_file" in spec:
        query_path = Path(spec["query_file"])
        query_path = query_path if query_path.is_absolute() else origin.parent / query_path
        if not query_path.exists():
            raise SourceConfigError(f"{where}.database.query_file {query_path} does not exist")
        query = query_path.read_text(encoding="utf-8").strip().rstrip(";")
        if ";" in query:
            raise SourceConfigError(f"{where}.database.query_file must hold a single SELECT statement")
    return DatabaseLocation(
        url=_expand(str(spec["url"]), origin),
        incremental_column=_check_identifier(spec["incremental_column"], f"{where}.database.incremental_column"),
        table=_check_identifier(spec["table"], f"{where}.database.table") if "table" in spec else None,
        query=query,
    )


def _cancellations(spec: dict | None, where: str) -> Cancellations | None:
    if not spec:
        return None
    status = spec.get("status") or {}
    prefix = spec.get("id_prefix") or {}
    values = {k: tuple(str(v) for v in (status.get(k) or ())) for k in ORDER_STATUSES if k in status}
    if status and "column" not in status:
        raise SourceConfigError(f"{where}.cancellations.status needs `column`")
    if prefix and not {"column", "prefix"} <= set(prefix):
        raise SourceConfigError(f"{where}.cancellations.id_prefix needs `column` and `prefix`")
    id_status = prefix.get("status", "cancelled")
    if id_status not in ORDER_STATUSES:
        raise SourceConfigError(f"{where}.cancellations.id_prefix.status must be one of {ORDER_STATUSES}")
    return Cancellations(status.get("column"), values, prefix.get("column"), prefix.get("prefix"), id_status)


def _likert(spec: dict | None, where: str) -> Likert:
    """Measures map to lists of item columns (glob patterns allowed); `scale` is the default answer range."""
    if not spec or "measures" not in spec:
        raise SourceConfigError(f"{where}.likert.measures is required for surveys")
    unknown = set(spec["measures"]) - set(LIKERT_MEASURES)
    if unknown:
        raise SourceConfigError(f"{where}.likert.measures: unknown {sorted(unknown)}; expected some of {list(LIKERT_MEASURES)}")
    default = _range(spec.get("scale", [1, 7]), f"{where}.likert.scale")
    measures = {m: tuple(str(i) for i in items) for m, items in spec["measures"].items()}
    ranges = {str(item): _range(r, f"{where}.likert.ranges.{item}") for item, r in (spec.get("ranges") or {}).items()}
    return Likert(measures, {"*": default, **ranges})


def _range(value, where: str) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not float(value[0]) < float(value[1]):
        raise SourceConfigError(f"{where} must be [low, high] with low < high")
    return float(value[0]), float(value[1])


def expand_items(likert: Likert, columns: list[str]) -> dict[str, list[str]]:
    """Resolves glob patterns against the export's columns; a pattern that matches nothing is an error."""
    resolved = {}
    for measure, patterns in likert.measures.items():
        items = []
        for pattern in patterns:
            hits = sorted(c for c in columns if fnmatch.fnmatchcase(c, pattern))
            if not hits:
                raise SourceConfigError(f"surveys: likert item {pattern!r} ({measure}) is not a column of the export")
            items.extend(h for h in hits if h not in items)
        resolved[measure] = items
    return resolved


def item_range(likert: Likert, item: str) -> tuple[float, float]:
    return likert.ranges.get(item, likert.ranges["*"])
