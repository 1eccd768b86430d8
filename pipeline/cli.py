"""`crm`: generate sample data, run the daily DAG for a date, print the warehouse summary."""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from pipeline.settings import PROJECT_ROOT, Settings, load_settings

DAG_FILE = PROJECT_ROOT / "dags" / "crm_daily.py"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.generate import generate

    out = Path(args.out) if args.out else settings.home / "sample"
    counts = generate(out, customers=args.customers, days=args.days, seed=args.seed, end_date=args.end_date,
                      dirty_rate=args.dirty_rate)
    print(f"wrote sample data to {out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return 0


def airflow_environment(settings: Settings) -> None:
    """Local Airflow under CRM_HOME unless the caller configured one; must run before Airflow is imported."""
    os.environ.setdefault("AIRFLOW_HOME", str(settings.home / "airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAG_FILE.parent))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__PARALLELISM", "4")  # 32 workers by default: too many for 2 cores


def migrate_airflow_db() -> None:
    """`airflow db migrate` once per Airflow home and version (it takes ~5 s; a no-op later)."""
    import airflow

    marker = Path(os.environ["AIRFLOW_HOME"]) / f".migrated-{airflow.__version__}"
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    marker.touch()


def load_dag(path: Path = DAG_FILE):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag_object


def run_dag(run_date: date) -> str:
    """Runs crm_daily in-process; Airflow infers a manual run's interval as the one ending at its
    logical date, so the run for data interval [D, D+1) gets logical date D+1."""
    from pipeline.tasks import interval_end

    end = interval_end(run_date)
    dag = load_dag()
    result = dag.test(logical_date=end, run_after=end)
    if not result.get_task_instances():  # Airflow calls a run with no task "success"
        return "no task ran (is --ds before the DAG's start_date?)"
    return str(result.state)


@contextlib.contextmanager
def output_to(path: Path):
    """Sends this process's stdout/stderr (Airflow's task logs included) to a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    if args.sources:
        os.environ["CRM_SOURCES"] = str(Path(args.sources).resolve())
        settings = load_settings()
    airflow_environment(settings)
    log = settings.home / "logs" / f"crm_run_{args.ds.isoformat()}.log"
    print(f"running crm_daily for {args.ds} (Airflow log: {log})", flush=True)
    started = time.monotonic()
    with output_to(log):
        migrate_airflow_db()
        state = run_dag(args.ds)
    if state != "success":
        cause = last_error(log)
        print(f"crm_daily for {args.ds} ended in state {state}; see {log}" + (f"\n{cause}" if cause else ""),
              file=sys.stderr)
        return 1
    code = cmd_summary(argparse.Namespace(as_of=args.ds), settings)
    print(f"crm_daily {args.ds}: {time.monotonic() - started:.1f} s wall, peak RSS {peak_rss_mb():,.0f} MB")
    print(report_line(settings, args.ds))
    return code


def report_line(settings: Settings, ds: date) -> str:
    """Where the run's HTML report is (written by the DAG's report task)."""
    from pipeline.report import report_path

    path = report_path(settings.lake("reports"), ds)
    return f"Run report: {path}" if path.exists() else f"Run report: none was written (expected {path})"


def last_error(log: Path) -> str | None:
    """The last exception line of a task in the Airflow log, so the cause is on the terminal."""
    pattern = re.compile(r"^[\w.]*(Error|Exception): .+")
    lines = [line for line in log.read_text(errors="replace").splitlines() if pattern.match(line)] if log.exists() else []
    return lines[-1][:2000] if lines else None


def peak_rss_mb() -> float:
    """Largest resident set of this process or any finished child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def cmd_summary(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline import summary
    from pipeline.warehouse import ensure_schema, make_engine

    engine = make_engine(settings.warehouse_url)
    ensure_schema(engine)
    with engine.connect() as conn:
        text = summary.render(summary.row_counts(conn), summary.pyramid(conn, args.as_of), args.as_of,
                              summary.sources(conn), summary.reasons(conn))
    engine.dispose()
    print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write realistic, day-partitioned raw sample data")
    gen.add_argument("--out", help="output folder (default: $CRM_HOME/sample, i.e. var/sample)")
    gen.add_argument("--customers", type=int, required=True, help="number of customers")
    gen.add_argument("--days", type=int, required=True, help="days of history ending at --end-date")
    gen.add_argument("--seed", type=int, required=True, help="random seed; same seed, same files")
    gen.add_argument("--end-date", type=_date, default=date(2025, 12, 31), help="last day (default 2025-12-31)")
    gen.add_argument("--dirty-rate", type=float, default=0.001, help="share of deliberately defective rows")
    gen.set_defaults(func=cmd_generate)

    run = sub.add_parser("run", help="run the crm_daily DAG for one data interval via Airflow's dag.test()")
    run.add_argument("--ds", type=_date, required=True, help="the data day YYYY-MM-DD (interval [ds, ds+1))")
    run.add_argument("--sources", help="source config YAML (default: $CRM_SOURCES or config/sources/sample.yml)")
    run.set_defaults(func=cmd_run)

    summ = sub.add_parser("summary", help="print warehouse row counts and the pyramid as of a date")
    summ.add_argument("--as-of", type=_date, default=date.today(), help="as-of date (default today)")
    summ.set_defaults(func=cmd_summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, load_settings())


def entry_point() -> None:
    """Console script. Skips interpreter teardown after a run: once GX is imported, DuckDB's
    nanobind bindings print pages of spurious 'leaked instance' reports at shutdown."""
    code = main()
    sys.stdout.flush(), sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry_point()
