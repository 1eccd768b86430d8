"""The fault suite's warehouses and its tally.

Every fault test starts from a copy of a warehouse (and its lakes) after the daily run of MID, puts a
fault into the run of SAMPLE_END, recovers the way an operator or Airflow would, and compares the
result with the clean runs of MID then SAMPLE_END, table by table (checksums, tests/conftest.py). The
references are built once per backend and session; a PostgreSQL copy is a `CREATE DATABASE ...
TEMPLATE`, a DuckDB one a file copy.

The tally: each test that survives its fault records the rows that went in (counted in the source
files themselves) and the rows the warehouse accounts for (staged + quarantined, per source); at the
end the suite prints "faults survived: N, rows lost: L" and writes var/faults/tally.json
(CRM_FAULTS_TALLY overrides the path). Rows lost and doubled are computed, never assumed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from pipeline.kinds import KINDS
from pipeline.settings import PROJECT_ROOT
from tests.conftest import SAMPLE_END, read_table, table_checksum
from tests.faults.driver import run_day

MID = date(2025, 12, 20)
STAGED_TABLE = {"customers": "stg_customer", "orders": "stg_order_line", "surveys": "stg_survey_response",
                "complaints": "stg_complaint"}


@dataclass(frozen=True)
class Warehouse:
    home: Path  # CRM_HOME: lakes, logs and, on DuckDB, the warehouse file
    url: str
    backend: str

    @property
    def sample(self) -> Path:
        return self.home / "sample"


def warehouse_state(url: str) -> dict[str, str]:
    """Checksum of every table and view (pipeline.summary.warehouse_objects)."""
    from pipeline.summary import warehouse_objects

    return {name: table_checksum(url, name) for name in warehouse_objects()}


def warehouse_rows(url: str) -> int:
    """Rows held by every table and view: what a comparison of two states compares."""
    from pipeline.summary import warehouse_objects
    from pipeline.warehouse import table_ref

    return sum(read_table(url, sa.select(sa.func.count().label("n")).select_from(table_ref(name)))["n"][0]
               for name in warehouse_objects())


def source_records(sample: Path, until: date) -> dict[str, int]:
    """Records per source in the day files up to `until`, counted by reading the files themselves."""
    counts = {}
    for kind in KINDS:
        files = [p for p in (sample / kind).iterdir() if date.fromisoformat(p.stem[-10:]) <= until]
        if kind == "complaints":
            counts[kind] = sum(1 for f in files for line in f.open(encoding="utf-8") if line.strip())
        else:
            counts[kind] = sum(pl.read_csv(f, infer_schema=False).height for f in files)
    return counts


def accounted_rows(url: str) -> dict[str, dict[str, int]]:
    """Per source: rows staged and quarantined in the warehouse, and what etl_batch says about them."""
    batches = read_table(url, "SELECT source, raw_rows, accepted_rows, quarantined_rows FROM etl_batch")
    quarantined = dict(read_table(url, "SELECT source, count(*) AS n FROM quarantine GROUP BY source").rows())
    out = {}
    for kind, table in STAGED_TABLE.items():
        mine = batches.filter(pl.col("source") == kind)
        out[kind] = {
            "staged": read_table(url, f"SELECT count(*) AS n FROM {table}")["n"][0],
            "quarantined": quarantined.get(kind, 0),
            "batch_raw": int(mine["raw_rows"].sum()),
            "batch_accepted": int(mine["accepted_rows"].sum()),
            "batch_quarantined": int(mine["quarantined_rows"].sum()),
            "unbalanced_batches": mine.filter(
                pl.col("raw_rows") != pl.col("accepted_rows") + pl.col("quarantined_rows")).height,
        }
    return out


# -- references ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def fault_pg():
    """A PostgreSQL cluster of the fault suite's own: its tests crash and restart it."""
    from tests.support.pg_cluster import PostgresCluster

    with PostgresCluster() as pg:
        yield pg


@dataclass(frozen=True)
class Reference:
    mid: Warehouse  # after the run of MID: the template every fault test copies, never written again
    end: Warehouse  # after the runs of MID and SAMPLE_END: what each recovery must give back
    mid_state: dict[str, str]
    end_state: dict[str, str]


@pytest.fixture(scope="session")
def references(request, tmp_path_factory, sample_dir):
    built: dict[str, Reference] = {}

    def reference(backend: str) -> Reference:
        if backend not in built:
            built[backend] = _build_reference(backend, tmp_path_factory, sample_dir, request)
        return built[backend]

    return reference


def _build_reference(backend: str, tmp_path_factory, sample_dir: Path, request) -> Reference:
    mid_home = tmp_path_factory.mktemp(f"ref_mid_{backend}")
    (mid_home / "sample").symlink_to(sample_dir)
    mid_url = (f"duckdb:///{mid_home / 'warehouse.duckdb'}" if backend == "duckdb"
               else request.getfixturevalue("fault_pg").new_database("ref_mid"))
    run_day(mid_home, mid_url, MID)
    mid = Warehouse(mid_home, mid_url, backend)
    end = copy_warehouse(mid, tmp_path_factory.mktemp(f"ref_end_{backend}"), request)
    run_day(end.home, end.url, SAMPLE_END)
    return Reference(mid, end, warehouse_state(mid.url), warehouse_state(end.url))


def copy_warehouse(source: Warehouse, home: Path, request, own_sample: bool = False) -> Warehouse:
    """A copy of a warehouse and its CRM_HOME; with own_sample, of the sample files too (to damage them)."""
    shutil.copytree(source.home, home, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("warehouse.duckdb.lock"))
    if own_sample:
        (home / "sample").unlink()
        shutil.copytree(source.home / "sample", home / "sample")
    if source.backend == "duckdb":
        return Warehouse(home, f"duckdb:///{home / 'warehouse.duckdb'}", "duckdb")
    return Warehouse(home, request.getfixturevalue("fault_pg").new_database("fault", template=source.url), "postgres")


@pytest.fixture
def at_mid(request, tmp_path, references):
    """A fresh copy of the reference warehouse after MID (or, with after_end, after SAMPLE_END too),
    for one test to break."""

    def copy(backend: str, own_sample: bool = False, after_end: bool = False) -> Warehouse:
        reference = references(backend)
        return copy_warehouse(reference.end if after_end else reference.mid, tmp_path / f"crm_{backend}", request,
                              own_sample)

    return copy


# -- the tally ----------------------------------------------------------------------------------------

_ENTRIES: list[dict] = []
_PASSED: set[str] = set()


@pytest.fixture
def tally(request):
    """record(fault, warehouse, rows_in): checks and records that the warehouse accounts for every
    input row exactly once (staged or quarantined, per source) and that etl_batch balances."""

    def record(fault: str, warehouse: Warehouse, rows_in: dict[str, int], compared_rows: int) -> dict:
        accounted = accounted_rows(warehouse.url)
        entry = {"test": request.node.nodeid, "fault": fault, "backend": warehouse.backend,
                 "rows_in": sum(rows_in.values()), "rows_accounted": 0, "rows_lost": 0, "rows_doubled": 0,
                 "rows_compared": compared_rows}
        for kind, n_in in rows_in.items():
            got = accounted[kind]
            held = got["staged"] + got["quarantined"]
            entry["rows_accounted"] += held
            entry["rows_lost"] += max(n_in - held, 0)
            entry["rows_doubled"] += max(held - n_in, 0)
            assert held == n_in, (fault, kind, n_in, got)
            assert got["unbalanced_batches"] == 0, (fault, kind, got)
            assert (got["batch_raw"], got["batch_accepted"], got["batch_quarantined"]) == (
                n_in, got["staged"], got["quarantined"]), (fault, kind, got)
        _ENTRIES.append(entry)
        return entry

    return record


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        _PASSED.add(report.nodeid)


def _survived() -> list[dict]:
    return [e for e in _ENTRIES if e["test"] in _PASSED]


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput"):  # an xdist worker: hand the entries to the controller
        session.config.workeroutput["fault_tally"] = json.dumps(_survived())
    else:
        session.config._fault_tally = getattr(session.config, "_fault_tally", []) + _survived()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    entries = json.loads(getattr(node, "workeroutput", {}).get("fault_tally", "[]"))
    node.config._fault_tally = getattr(node.config, "_fault_tally", []) + entries


def pytest_terminal_summary(terminalreporter, config):
    entries = getattr(config, "_fault_tally", [])
    if not entries:
        return
    totals = {k: sum(e[k] for e in entries) for k in ("rows_in", "rows_accounted", "rows_lost", "rows_doubled",
                                                        "rows_compared")}
    summary = {"faults_survived": len(entries), **totals, "faults": sorted(entries, key=lambda e: e["test"])}
    path = Path(os.environ.get("CRM_FAULTS_TALLY") or PROJECT_ROOT / "var" / "faults" / "tally.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    write = terminalreporter.write_line
    terminalreporter.section("fault tally")
    for e in summary["faults"]:
        write(f"{e['fault']} [{e['backend']}]: rows in {e['rows_in']:,}, accounted {e['rows_accounted']:,}, "
              f"lost {e['rows_lost']}, doubled {e['rows_doubled']}; {e['rows_compared']:,} warehouse rows compared")
    write(f"faults survived: {len(entries)}, rows lost: {totals['rows_lost']}, rows doubled: {totals['rows_doubled']} "
          f"({totals['rows_in']:,} rows in, {totals['rows_compared']:,} warehouse rows compared; {path})")


# -- running the tasks in a process of their own ------------------------------------------------------

def driver_command(warehouse: Warehouse, *days: date, load_only: bool = False, prefix: tuple[str, ...] = ()) -> list[str]:
    """`python -m tests.faults.driver` for the days, behind `prefix` (e.g. nsenter into a namespace)."""
    return [*prefix, sys.executable, "-m", "tests.faults.driver", *(["--load-only"] if load_only else []),
            str(warehouse.home), warehouse.url, *(d.isoformat() for d in days)]


def driver_env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | extra


def drive(warehouse: Warehouse, *days: date, load_only: bool = False, prefix: tuple[str, ...] = (),
          timeout: float = 600, **env: str) -> tuple[int, list[dict], str]:
    """Runs the driver to the end: (exit code, its JSON lines, its stderr)."""
    proc = subprocess.run(driver_command(warehouse, *days, load_only=load_only, prefix=prefix), cwd=PROJECT_ROOT,
                          env=driver_env(**env), capture_output=True, text=True, timeout=timeout)
    return proc.returncode, parse_lines(proc.stdout), proc.stderr


def parse_lines(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
