"""The benchmark workloads: generated raw exports at a named size, as CSV/JSON lines and as Parquet.

Generation is setup, not measurement. A workload is kept under var/bench/<size>/raw and reused
while its parameters and pipeline/generate.py are unchanged (a stamp file records both).

`crm generate` draws about 10 order lines, 0.37 survey responses and 0.16 complaints per customer
over a year. The issue's mixes have more of the last two, so responses and tickets are topped up
with copies of generated ones under fresh ids (the business keys), on the same days.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from pipeline.generate import generate
from pipeline.settings import PROJECT_ROOT

log = logging.getLogger(__name__)
END_DATE = date(2025, 12, 31)
SAMPLE_SOURCES = PROJECT_ROOT / "config" / "sources" / "sample.yml"
GENERATOR = PROJECT_ROOT / "pipeline" / "generate.py"
ID_COLUMNS = {"surveys": "response_id", "complaints": "ticket_id"}


@dataclass(frozen=True)
class Spec:
    customers: int  # about 10 order lines each over the year
    survey_responses: int
    complaints: int
    days: int = 365
    seed: int = 42


SIZES = {
    "XS": Spec(customers=400, survey_responses=300, complaints=100, days=30),  # the harness's smoke test
    "S": Spec(customers=100_000, survey_responses=100_000, complaints=30_000),  # ~1M order lines
    "M": Spec(customers=1_000_000, survey_responses=1_000_000, complaints=300_000),  # ~10M order lines
    # ~100M order lines: customer_id has 7 digits, so this is the generator's largest population.
    "L": Spec(customers=9_999_999, survey_responses=10_000_000, complaints=3_000_000),
}


@dataclass(frozen=True)
class Workload:
    size: str
    root: Path  # var/bench/<size>
    counts: dict[str, int]

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    def sources(self, fmt: str) -> Path:
        """The source config reading the raw exports as `csv` (CSV and JSON lines) or `parquet`."""
        return self.raw / f"sources-{fmt}.yml"


def prepare(size: str, bench_dir: Path) -> Workload:
    spec = SIZES[size]
    root = bench_dir / size
    stamp = root / "raw" / "workload.json"
    wanted = {"spec": asdict(spec), "end_date": END_DATE.isoformat(),
              "generator": hashlib.sha256(GENERATOR.read_bytes()).hexdigest()}
    if stamp.exists() and json.loads(stamp.read_text())["params"] == wanted:
        return Workload(size, root, json.loads(stamp.read_text())["counts"])
    shutil.rmtree(root / "raw", ignore_errors=True)
    counts = build(spec, root / "raw")
    stamp.write_text(json.dumps({"params": wanted, "counts": counts}, indent=2))
    return Workload(size, root, counts)


def build(spec: Spec, raw: Path) -> dict[str, int]:
    csv_dir = raw / "csv"
    log.info("generating %s customers over %s days into %s", spec.customers, spec.days, csv_dir)
    counts = generate(csv_dir, customers=spec.customers, days=spec.days, seed=spec.seed, end_date=END_DATE)
    counts["surveys"] = top_up(csv_dir / "surveys", "surveys", spec.survey_responses, read_csv_text, write_csv)
    counts["complaints"] = top_up(csv_dir / "complaints", "complaints", spec.complaints, read_ndjson, write_ndjson)
    to_parquet(csv_dir, raw / "parquet")
    write_sources(raw, csv_dir, raw / "parquet")
    return counts


def read_csv_text(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def read_ndjson(path: Path) -> pl.DataFrame:
    return pl.read_ndjson(path, infer_schema_length=None)


def write_csv(frame: pl.DataFrame, path: Path) -> None:
    frame.write_csv(path)


def write_ndjson(frame: pl.DataFrame, path: Path) -> None:
    frame.write_ndjson(path)


def top_up(folder: Path, kind: str, target: int, read, write) -> int:
    """Appends copies of existing rows to their own day files until the kind has `target` rows.
    Copy c of id 'S000012345' is 'S{c}000012345': unique, and the same shape of key."""
    files = sorted(folder.iterdir())
    frames = [read(f).with_columns(pl.lit(i).alias("_file")) for i, f in enumerate(files)]
    every = pl.concat(frames, how="diagonal_relaxed")
    need = target - every.height
    if need <= 0:
        return every.height
    index = np.arange(need)
    id_col = ID_COLUMNS[kind]
    extra = every[index % every.height].with_columns(
        pl.concat_str(pl.col(id_col).str.head(1), pl.Series(index // every.height + 1).cast(pl.String),
                      pl.col(id_col).str.tail(-1)).alias(id_col)
    )
    for i, (path, frame) in enumerate(zip(files, frames)):
        added = extra.filter(pl.col("_file") == i)
        if added.height:
            write(pl.concat([frame, added], how="diagonal_relaxed").drop("_file"), path)
    return every.height + need


def to_parquet(csv_dir: Path, parquet_dir: Path) -> None:
    """Each raw file as a typed Parquet file (types inferred from the whole file, as an export tool writes them)."""
    for path in sorted(csv_dir.rglob("*.*")):
        frame = read_ndjson(path) if path.suffix == ".jsonl" else pl.read_csv(path, infer_schema_length=None)
        out = parquet_dir / path.relative_to(csv_dir).with_suffix(".parquet")
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(out)


def write_sources(raw: Path, csv_dir: Path, parquet_dir: Path) -> None:
    """The shipped sample.yml pointed at the workload: as is for CSV/JSON lines, and with every
    source switched to Parquet for the Parquet copy."""
    config = yaml.safe_load(SAMPLE_SOURCES.read_text())
    (raw / "sources-csv.yml").write_text(yaml.safe_dump({**config, "base_dir": str(csv_dir)}, sort_keys=False))
    for spec in config["sources"].values():
        spec["path"] = str(Path(spec["path"]).with_suffix(".parquet"))
        spec["format"] = "parquet"
        spec.pop("encoding", None)
    (raw / "sources-parquet.yml").write_text(yaml.safe_dump({**config, "base_dir": str(parquet_dir)}, sort_keys=False))
