"""The run report of a real `crm run` opens in headless Chromium with every chart rendered, no script
error and no network request; its queries give the same numbers on PostgreSQL.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe): no port, no
websocket client. Script errors are caught twice: by the browser (Runtime.exceptionThrown, console
errors and warnings, Log entries) and by the page's own bookkeeping (data-script-errors,
data-charts-failed), so neither a broken bundle nor a failed embed promise can pass unseen.
"""
from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import select
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from tests.conftest import SAMPLE_END, run_crm

pytestmark = [pytest.mark.airflow, pytest.mark.chromium, pytest.mark.xdist_group("run_report")]
CHART_IDS = ["pyramid", "rfm-grid", "clv", "rater", "complaint-sla", "quarantine", "kpi-trend"]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
# What the page tells about its charts once every embed promise has settled.
INSPECT_JS = """JSON.stringify({
  status: document.documentElement.dataset.reportStatus,
  scriptErrors: document.documentElement.dataset.scriptErrors,
  rendered: document.documentElement.dataset.chartsRendered,
  failed: document.documentElement.dataset.chartsFailed,
  pageErrors: window.reportErrors || null,
  charts: Array.from(document.querySelectorAll('.chart')).map(function (el) {
    var svg = el.querySelector('svg'), box = svg ? svg.getBoundingClientRect() : null;
    var marks = {};
    el.querySelectorAll('g.role-mark').forEach(function (g) {
      var type = (g.getAttribute('class').match(/mark-(\\w+)/) || [])[1];
      marks[type] = (marks[type] || 0) + g.children.length;
    });
    return {id: el.dataset.chart, rendered: el.dataset.rendered || null, error: el.dataset.error || null,
            noData: el.dataset.noData === 'true', svg: el.querySelectorAll('svg').length,
            canvas: el.querySelectorAll('canvas').length, width: box ? box.width : 0,
            height: box ? box.height : 0, marks: marks};
  })
})"""


def chromium_binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        pytest.fail("headless Chromium is needed: `make system-deps` (Debian package `chromium`)")
    return binary


class DevTools:
    """Headless Chromium and one page, over the DevTools pipe: NUL-terminated JSON, fd 3 in, fd 4 out."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1000):
        to_browser_r, self._out = os.pipe()
        self._in, from_browser_w = os.pipe()
        # The shell puts the pipe ends on fds 3 and 4 and execs Chromium: no preexec_fn in a threaded pytest.
        args = [chromium_binary(), "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
                "--mute-audio", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                # Nothing on this page may need the network: make every host unresolvable.
                "--host-resolver-rules=MAP * ~NOTFOUND", "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w}', *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE)
        os.close(to_browser_r), os.close(from_browser_w)
        self._buffer, self._next_id, self.events, self.session = b"", 0, [], None
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, timeout: float = 30, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            if "method" in reply:
                self.events.append(reply)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium exited: {self.proc.stderr.read().decode(errors='replace')[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):  # e.g. no document yet while the navigation commits
                if value := self.evaluate(expression):
                    return value
            time.sleep(0.1)
        raise TimeoutError(f"still false after {timeout} s: {expression}; browser problems: {self.problems()}")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not just the viewport."""
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self) -> list[str]:
        """Uncaught exceptions, console errors and warnings, error log entries, and non-local requests."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning", "assert"):
                found.append(f"console.{params['type']}: " + " ".join(str(a.get("value", a.get("description")))
                                                                      for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            elif method == "Network.requestWillBeSent" and not params["request"]["url"].startswith(LOCAL_SCHEMES):
                found.append(f"network request: {params['request']['url']}")
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._in), os.close(self._out)
        self.proc.stderr.close()


@pytest.fixture(scope="module")
def report_run(tmp_path_factory, sample_dir, airflow_home):
    """One real `crm run` of the whole sample on an embedded DuckDB warehouse, shared by this module."""
    home = tmp_path_factory.mktemp("report") / "crm"
    home.mkdir()
    (home / "sample").symlink_to(sample_dir)
    url = f"duckdb:///{home / 'warehouse.duckdb'}"
    started = time.monotonic()
    proc = run_crm(home, airflow_home, url, "run", "--ds", SAMPLE_END.isoformat())
    print(f"crm run: {time.monotonic() - started:.1f} s")
    return {"home": home, "url": url, "stdout": proc.stdout,
            "report": home / "reports" / f"run_{SAMPLE_END.isoformat()}.html"}


def test_crm_run_writes_the_report_and_says_where(report_run):
    home, path = report_run["home"], report_run["report"]
    assert path.is_file()
    assert report_run["stdout"].rstrip().splitlines()[-1] == f"Run report: {path}"
    task_log = (home / "logs" / f"crm_run_{SAMPLE_END.isoformat()}.log").read_text(errors="replace")
    assert f"run report: {path}" in task_log
    html = path.read_text(encoding="utf-8")
    assert "<script src" not in html and "<link" not in html  # self-contained


def open_report(path: Path, workdir: Path) -> tuple[dict, Path, list[str]]:
    """(the page's state once every chart settled, a full-page screenshot, the browser's problems)."""
    browser = DevTools(workdir / "profile")
    try:
        browser.send("Page.navigate", url=path.as_uri())
        browser.wait_for("document.readyState === 'complete' && document.documentElement.dataset.reportStatus === 'done'")
        state = json.loads(browser.evaluate(INSPECT_JS))
        shot = browser.screenshot(workdir / "report.png")
        return state, shot, browser.problems()
    finally:
        browser.close()


def test_report_renders_every_chart_in_headless_chromium(report_run, tmp_path):
    started = time.monotonic()
    state, shot, problems = open_report(report_run["report"], tmp_path)
    print(f"chromium: {time.monotonic() - started:.1f} s; screenshot {shot}")

    assert problems == []
    assert (state["scriptErrors"], state["pageErrors"], state["failed"]) == ("0", [], "0")
    charts = {c["id"]: c for c in state["charts"]}
    assert list(charts) == CHART_IDS and state["rendered"] == str(len(CHART_IDS))
    for chart in charts.values():
        assert chart["rendered"] == "true" and chart["error"] is None, chart
        assert chart["svg"] + chart["canvas"] >= 1 and chart["width"] > 50 and chart["height"] > 50, chart
        assert sum(chart["marks"].values()) > 0, chart
    # The sample has orders, surveys and complaints: these draw real marks, not a no-data text.
    assert charts["pyramid"]["marks"].get("rect", 0) >= 4
    assert charts["rfm-grid"]["marks"].get("rect", 0) >= 5
    assert charts["rater"]["marks"].get("symbol", 0) >= 5
    assert charts["complaint-sla"]["marks"].get("rect", 0) >= 2
    assert charts["kpi-trend"]["marks"].get("symbol", 0) >= 1
    assert not any(charts[c]["noData"] for c in ("pyramid", "rfm-grid", "rater", "complaint-sla"))
    assert_not_blank(shot)


def test_the_checks_catch_a_chart_that_fails_and_a_script_error(report_run, tmp_path):
    """The same report broken twice: an invalid chart spec and a throwing script. Both must show."""
    html = report_run["report"].read_text(encoding="utf-8")
    specs = re.search(r'(<script type="application/json" id="chart-specs">)(.*?)(</script>)', html, re.S)
    broken = json.loads(specs.group(2)) | {"pyramid": {"mark": "no-such-mark"}}
    html = html.replace(specs.group(0), specs.group(1) + json.dumps(broken) + specs.group(3))
    head, tail = html.rsplit("</body>", 1)  # the last one: the inlined bundle has the string too
    html = head + "<script>window.noSuchFunction();</script></body>" + tail
    path = tmp_path / "broken.html"
    path.write_text(html, encoding="utf-8")

    state, _, problems = open_report(path, tmp_path)
    charts = {c["id"]: c for c in state["charts"]}
    # A failed embed is a handled promise rejection: only the page's own bookkeeping sees it...
    assert (state["failed"], state["rendered"]) == ("1", str(len(CHART_IDS) - 1))
    assert charts["pyramid"]["error"] and not charts["pyramid"]["rendered"] and not charts["pyramid"]["svg"]
    assert any(e.startswith("pyramid: ") for e in state["pageErrors"])
    # ...an uncaught exception both the page and the browser.
    assert int(state["scriptErrors"]) == 2 and any("noSuchFunction" in e for e in state["pageErrors"])
    assert any(p.startswith("exception:") and "noSuchFunction" in p for p in problems), problems


def assert_not_blank(png: Path) -> None:
    from PIL import Image, ImageStat

    with Image.open(png) as image:
        assert image.format == "PNG" and image.width >= 1000 and image.height >= 1500, image.size
        gray = image.convert("L")
        assert ImageStat.Stat(gray).stddev[0] > 20  # a blank (white) page has none
        histogram = gray.histogram()
        assert 1 - histogram[255] / sum(histogram) > 0.05  # more than 5% of the pixels are not white


def test_complaint_sla_outcomes_agree_with_the_scored_kpi(report_run):
    """The report's SQL re-derives the SLA outcome per ticket; it must give kpi_daily's breach share."""
    from pipeline.report.charts import BREACHED
    from pipeline.report.data import read_report_data
    from pipeline.scoring.config import load_scoring_config
    from pipeline.settings import PROJECT_ROOT
    from pipeline.warehouse import make_engine

    engine = make_engine(report_run["url"])
    try:
        with engine.connect() as conn:
            data = read_report_data(conn, SAMPLE_END, load_scoring_config(PROJECT_ROOT / "config" / "scoring.yml"))
    finally:
        engine.dispose()
    tickets = dict(data.complaint_sla.group_by("outcome").agg(pl.col("tickets").sum()).rows())
    breached = sum(tickets.get(o, 0) for o in BREACHED)
    assert sum(tickets.values()) == data.kpis["complaints"]
    assert breached / (breached + tickets.get("resolved in time", 0)) == pytest.approx(data.kpis["sla_breach_share"])
    open_tickets = sum(n for o, n in tickets.items() if o.startswith("open"))
    assert open_tickets == data.kpis["open_complaints"]


REPORT_TABLES = ["customer_score_daily", "customer_pyramid_daily", "kpi_daily", "kpi_alert", "stg_complaint",
                 "etl_batch", "quarantine", "dq_validation_result"]


@pytest.mark.postgres
def test_report_queries_give_the_same_numbers_on_postgres(report_run, pg_cluster, tmp_path):
    """The report's tables copied from the DuckDB run into PostgreSQL: every report query agrees."""
    from pipeline.report import write_report
    from pipeline.report.data import read_report_data
    from pipeline.scoring.config import ScoringConfig
    from pipeline.warehouse import ensure_schema, make_engine

    pg = make_engine(pg_cluster.new_database("report_pg"))
    duck = make_engine(report_run["url"])
    try:
        ensure_schema(pg)
        copy_tables(duck, pg, REPORT_TABLES)
        with duck.connect() as d, pg.connect() as p:
            ours, theirs = read_report_data(d, SAMPLE_END, ScoringConfig()), read_report_data(p, SAMPLE_END, ScoringConfig())
            empty = read_report_data(p, date(1990, 1, 1), ScoringConfig())
        page = write_report(pg, SAMPLE_END, tmp_path).read_text(encoding="utf-8")
    finally:
        pg.dispose(), duck.dispose()
    for name in ("pyramid", "rfm_grid", "clv_bins", "kpi_history", "kpi_alerts", "complaint_sla", "data_quality",
                 "quarantine_reasons", "expectations"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert a.columns == b.columns, name
        assert same_rows(a.rows(), b.rows()), (name, a, b)
    assert ours.pyramid.height and ours.rfm_grid.height and ours.complaint_sla.height and ours.kpis
    assert "warehouse: postgresql" in page and 'id="chart-kpi-trend"' in page
    # A date before any load: every frame is empty, and the charts say so (unit tests cover the specs).
    assert all(getattr(empty, n).height == 0 for n in ("pyramid", "rfm_grid", "clv_bins", "complaint_sla", "kpi_history"))


def same_rows(ours: list[tuple], theirs: list[tuple]) -> bool:
    """Equal rows, floats to 1e-9 relative: the engines may sum a mean in another order."""
    def same(a, b) -> bool:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) if isinstance(a, float) and isinstance(b, float) else a == b
    return len(ours) == len(theirs) and all(len(r) == len(s) and all(map(same, r, s)) for r, s in zip(ours, theirs))


def copy_tables(source: sa.Engine, target: sa.Engine, tables: list[str]) -> None:
    with source.connect() as src, target.begin() as dst:
        for name in tables:
            result = src.execute(sa.select(sa.literal_column("*")).select_from(sa.table(name)))
            rows = [dict(r._mapping) for r in result]
            if rows:
                table = sa.Table(name, sa.MetaData(), autoload_with=dst)
                dst.execute(table.insert(), rows)
