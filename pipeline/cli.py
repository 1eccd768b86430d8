"""`crm`: generate sample data, run the daily DAG for a date, print the warehouse summary."""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.util
import os
import re
import resource
import signal
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


_RUN_LOCK = []  # the open lock file, held until the process exits


def one_run_at_a_time() -> None:
    """One `crm run` or `crm backfill` at a time per Airflow home, as max_active_runs=1 gives crm_daily
    on a scheduler. A second one waits here until the first exits, instead of clearing and running the
    task instances the first is running (dag.test reuses the run of the same logical date)."""
    if _RUN_LOCK:
        return
    path = Path(os.environ["AIRFLOW_HOME"]) / "crm_daily.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        print(f"another crm run or backfill (pid {lock.read().strip() or '?'}) is using {path.parent}; "
              "waiting for it to finish", file=sys.stderr, flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    _RUN_LOCK.append(lock)


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


def run_dag(run_date: date, dag=None) -> str:
    """Runs crm_daily in-process; Airflow infers a manual run's interval as the one ending at its
    logical date, so the run for data interval [D, D+1) gets logical date D+1."""
    from pipeline.tasks import interval_end

    end = interval_end(run_date)
    dag = dag or load_dag()
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


def with_sources(args: argparse.Namespace, settings: Settings) -> Settings:
    """--sources overrides CRM_SOURCES for this process and the tasks it runs."""
    if not args.sources:
        return settings
    os.environ["CRM_SOURCES"] = str(Path(args.sources).resolve())
    return load_settings()


def run_log(settings: Settings, ds: date) -> Path:
    return settings.home / "logs" / f"crm_run_{ds.isoformat()}.log"


@contextlib.contextmanager
def exit_on_interrupt(message: str):
    """Ctrl-C ends the process at once, with `message` on the terminal and exit code 130. Airflow's
    in-process task runner would take the KeyboardInterrupt for a task failure and retry the task
    minutes later. Stopping hard is safe: a load commits only at its end, and a process killed
    anywhere leaves the warehouse as it was (tests/integration/test_warehouse.py)."""
    terminal = os.dup(2)  # still the terminal while output_to sends fd 2 to a log

    def stop(signum, frame):
        os.write(terminal, f"\n{message}\n".encode())
        os._exit(130)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        os.close(terminal)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    settings = with_sources(args, settings)
    airflow_environment(settings)
    one_run_at_a_time()
    log = run_log(settings, args.ds)
    print(f"running crm_daily for {args.ds} (Airflow log: {log})", flush=True)
    started = time.monotonic()
    with exit_on_interrupt(f"crm run {args.ds} interrupted: its load did not commit, the warehouse is as before"), \
            output_to(log):
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


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    """crm_daily for every date from --start to --end, in order, in this process (pipeline/backfill.py)."""
    from pipeline.backfill import DateOutcome, backfill, dates_between, done_dates

    settings = with_sources(args, settings)
    airflow_environment(settings)
    one_run_at_a_time()
    if args.start > args.end:
        print(f"crm backfill: --start {args.start} is after --end {args.end}", file=sys.stderr)
        return 2
    dates = dates_between(args.start, args.end)
    setup_log = settings.home / "logs" / f"crm_backfill_{args.start.isoformat()}_{args.end.isoformat()}.log"
    print(f"backfilling crm_daily for {args.start} .. {args.end}: {len(dates)} dates"
          + (", reprocessing done ones" if args.reprocess else "") + f" (Airflow logs: {run_log(settings, args.start).parent})",
          flush=True)
    started = time.monotonic()
    with output_to(setup_log):
        from pipeline.warehouse import ensure_schema, make_engine

        migrate_airflow_db()
        dag = load_dag()
        engine = make_engine(settings.warehouse_url)
        ensure_schema(engine)

    def is_done(day: date) -> bool:
        with engine.connect() as conn:
            return day in done_dates(conn, day, day)

    def run(day: date) -> DateOutcome:
        log = run_log(settings, day)
        with output_to(log):
            state = run_dag(day, dag)
        return DateOutcome(state, None if state == "success" else f"{last_error(log) or 'no error line'}; see {log}")

    with engine.connect() as conn:
        done = done_dates(conn, args.start, args.end)
    interrupted = ("crm backfill interrupted: the dates whose load committed are done, the one running is not; "
                   "run the same command again to resume")
    # The bar goes to the terminal even while a date's output goes to its log (output_to moves fd 2).
    with os.fdopen(os.dup(2), "w") as terminal, exit_on_interrupt(interrupted):
        try:
            result = backfill(dates, done, run, is_done, reprocess=args.reprocess, progress=terminal)
        finally:
            engine.dispose()
    elapsed = time.monotonic() - started
    counts = f"{len(result.ran)} run, {len(result.skipped)} already done (skipped)"
    if not result.ok:
        print(f"crm backfill stopped at {result.failed}: crm_daily ended in state {result.outcome.state}: "
              f"{result.outcome.cause}\n{counts} before it; the dates from {result.failed} on are not done. "
              "Fix the cause and run the same command again to resume from that date.", file=sys.stderr)
        return 1
    print(f"crm backfill {args.start} .. {args.end}: {counts}; {elapsed:.1f} s wall, peak RSS {peak_rss_mb():,.0f} MB")
    return 0


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
    from pipeline.warehouse import connected

    with connected(settings.warehouse_url) as conn:
        text = summary.render(summary.row_counts(conn), summary.pyramid(conn, args.as_of), args.as_of,
                              summary.sources(conn), summary.reasons(conn))
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

    back = sub.add_parser("backfill", help="run crm_daily for each date of a range, in order, resumable")
    back.add_argument("--start", type=_date, required=True, help="first data day YYYY-MM-DD")
    back.add_argument("--end", type=_date, required=True, help="last data day YYYY-MM-DD (inclusive)")
    back.add_argument("--reprocess", action="store_true",
                      help="run dates whose load already committed again (default: skip them)")
    back.add_argument("--sources", help="source config YAML (default: $CRM_SOURCES or config/sources/sample.yml)")
    back.set_defaults(func=cmd_backfill)

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
