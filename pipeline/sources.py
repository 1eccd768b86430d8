"""The declarative source configuration (YAML): where each kind of raw export lives and how to read it."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from pipeline.schemas import KINDS

FORMATS = {"csv", "jsonl", "parquet"}
ENCODINGS = {"utf-8", "utf-8-sig", "gb18030"}
_ENV = re.compile(r"\$\{(\w+)\}")


class SourceConfigError(ValueError):
    """The source YAML is malformed; the message names the file and the offending key."""


@dataclass(frozen=True)
class SourceConfig:
    kind: str
    path_template: str  # absolute, with one `{date}` placeholder for the day partition
    format: str
    encoding: str = "utf-8"
    delimiter: str = ","
    max_quarantine_share: float = 0.05

    def path_for(self, day: date) -> Path:
        return Path(self.path_template.replace("{date}", day.isoformat()))

    def partitions(self) -> dict[date, Path]:
        """Every day partition present on disk, by the date embedded in its file name."""
        folder = Path(self.path_template).parent
        pattern = re.compile(re.escape(Path(self.path_template).name).replace(r"\{date\}", r"(\d{4}-\d{2}-\d{2})") + "$")
        if not folder.is_dir():
            return {}
        found = {}
        for entry in folder.iterdir():
            match = pattern.match(entry.name)
            if match:
                found[date.fromisoformat(match.group(1))] = entry
        return dict(sorted(found.items()))


def _expand(value: str, origin: Path) -> str:
    def env(m: re.Match) -> str:
        if m.group(1) not in os.environ:
            raise SourceConfigError(f"{origin}: environment variable {m.group(1)} is not set")
        return os.environ[m.group(1)]

    return _ENV.sub(env, value)


def load_sources(path: Path) -> dict[str, SourceConfig]:
    path = Path(path)
    if not path.exists():
        raise SourceConfigError(f"source config {path} does not exist")
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    base = Path(_expand(str(doc.get("base_dir", ".")), path))
    base = base if base.is_absolute() else (path.parent / base).resolve()
    entries = doc.get("sources") or {}
    unknown = set(entries) - set(KINDS)
    if unknown:
        raise SourceConfigError(f"{path}: unknown source kinds {sorted(unknown)}; expected some of {list(KINDS)}")
    return {kind: _source(kind, spec, base, path) for kind, spec in entries.items()}


def _source(kind: str, spec: dict, base: Path, origin: Path) -> SourceConfig:
    template = spec.get("path", "")
    if template.count("{date}") != 1:
        raise SourceConfigError(f"{origin}: sources.{kind}.path needs exactly one {{date}} placeholder")
    fmt = spec.get("format", "csv")
    if fmt not in FORMATS:
        raise SourceConfigError(f"{origin}: sources.{kind}.format must be one of {sorted(FORMATS)}, not {fmt!r}")
    encoding = str(spec.get("encoding", "utf-8")).lower()
    if encoding not in ENCODINGS:
        raise SourceConfigError(f"{origin}: sources.{kind}.encoding must be one of {sorted(ENCODINGS)}")
    share = float(spec.get("max_quarantine_share", 0.05))
    if not 0 <= share <= 1:
        raise SourceConfigError(f"{origin}: sources.{kind}.max_quarantine_share must be within [0, 1]")
    return SourceConfig(
        kind=kind,
        path_template=str(base / _expand(template, origin)),
        format=fmt,
        encoding=encoding,
        delimiter=spec.get("delimiter", ","),
        max_quarantine_share=share,
    )
