"""The run report as one self-contained HTML page: the Vega, Vega-Lite and vega-embed JavaScript is
inlined (bundled by vl-convert), so the file renders offline, e.g. attached to a ticket.

The page reports on itself: each chart container gets data-rendered="true" or data-error once its
embed promise settles, <html> gets data-report-status="done" and data-charts-rendered/-failed when all
have, and any script error is listed in a visible banner and counted in data-script-errors.
"""
from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import altair as alt
import jinja2
import polars as pl

from pipeline.report.charts import is_no_data
from pipeline.report.data import ReportData

EMBED_OPTIONS = {"actions": False, "renderer": "svg"}
# Headline numbers: kpi_daily column, label, format.
TILES = [
    ("customers", "customers", "{:,.0f}"),
    ("revenue_amount", "revenue to date", "{:,.0f}"),
    ("repeat_purchase_rate", "repeat purchase rate", "{:.1%}"),
    ("retention_rate", "retention", "{:.1%}"),
    ("clv_total_amount", "total CLV", "{:,.0f}"),
    ("nps", "NPS", "{:+.0f}"),
    ("csat", "CSAT", "{:.1%}"),
    ("complaints", "complaints", "{:,.0f}"),
    ("sla_breach_share", "SLA breach share", "{:.1%}"),
]
SECTIONS = {
    "pyramid": "Customer pyramid",
    "rfm-grid": "RFM grid",
    "clv": "Customer lifetime value",
    "rater": "Service quality",
    "complaint-sla": "Complaint SLA",
    "quarantine": "Quarantine",
    "kpi-trend": "KPI trend",
}
WIDE = {"kpi-trend"}

TEMPLATE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<!DOCTYPE html>
<html lang="en" data-report-status="loading" data-script-errors="0">
<head>
<meta charset="utf-8">
<title>CRM run report {{ as_of }}</title>
<script>
  // First script on the page: records every later script error, the chart bundle's included.
  window.reportErrors = [];
  function reportError(message) {
    window.reportErrors.push(String(message));
    document.documentElement.dataset.scriptErrors = String(window.reportErrors.length);
    var box = document.getElementById("script-errors");
    if (box) { box.hidden = false; box.textContent = "Script errors: " + window.reportErrors.join(" | "); }
  }
  window.addEventListener("error", function (e) { reportError(e.message || e.type); });
  window.addEventListener("unhandledrejection", function (e) { reportError(e.reason); });
</script>
<script>
// Vega {{ versions.vega }}, Vega-Lite {{ versions.vegalite }}, vega-embed {{ versions.embed }} (bundled by vl-convert)
{{ bundle | safe }}
</script>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #222; background: #fff; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 16px; margin: 0 0 8px; }
  .meta { color: #666; font-size: 13px; margin-bottom: 16px; }
  .tiles { display: flex; flex-wrap: wrap; gap: 10px; margin-bottom: 16px; }
  .tile { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 120px; }
  .tile .value { font-size: 20px; font-weight: 600; }
  .tile .label { font-size: 12px; color: #666; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }
  section { border: 1px solid #e3e3e3; border-radius: 6px; padding: 12px; overflow-x: auto; }
  section.wide { grid-column: 1 / -1; }
  table { border-collapse: collapse; font-size: 13px; }
  th, td { border-bottom: 1px solid #eee; padding: 4px 10px; text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  th[colspan] { text-align: center; }
  .alerts td, .alerts th { text-align: left; }
  .critical { color: #b00020; font-weight: 600; }
  .warning { color: #b36b00; }
  #script-errors { background: #fde8e8; border: 1px solid #b00020; color: #b00020; padding: 8px; margin-bottom: 12px; }
  .chart[data-error] { color: #b00020; }
</style>
</head>
<body>
<div id="script-errors" hidden></div>
<h1>CRM run report &middot; {{ as_of }}</h1>
<div class="meta">Data interval {{ as_of }} (UTC) &middot; warehouse: {{ dialect }} &middot; generated {{ generated }}</div>

<div class="tiles">
{% for label, value in tiles %}  <div class="tile"><div class="value">{{ value }}</div><div class="label">{{ label }}</div></div>
{% endfor %}</div>

<section class="wide" id="alerts">
<h2>KPI alerts on {{ as_of }}</h2>
{% if alerts %}<table class="alerts"><tr><th>severity</th><th>metric</th><th>message</th></tr>
{% for a in alerts %}<tr><td class="{{ a.severity }}">{{ a.severity }}</td><td>{{ a.metric }}</td><td>{{ a.message }}</td></tr>
{% endfor %}</table>{% elif has_kpis %}<p>No KPI broke its threshold.</p>{% else %}<p>No KPIs were scored for this date.</p>{% endif %}
</section>

<div class="grid">
{% for chart in charts %}<section class="{{ 'wide' if chart.wide else '' }}" aria-label="{{ chart.heading }}">
<div class="chart" id="chart-{{ chart.id }}" data-chart="{{ chart.id }}"{% if chart.no_data %} data-no-data="true"{% endif %}></div>
</section>
{% endfor %}
<section class="wide" id="data-quality">
<h2>Data quality per source</h2>
{% if quality %}<table>
<tr><th rowspan="2">source</th><th colspan="6">this run</th><th colspan="3">all loaded so far</th></tr>
<tr><th>batches</th><th>raw rows</th><th>accepted</th><th>quarantined</th><th>quarantined share</th><th>failed expectations</th>
<th>batches</th><th>accepted</th><th>quarantined</th></tr>
{% for q in quality %}<tr><td>{{ q.source }}</td><td>{{ q.run_batches }}</td><td>{{ q.run_raw_rows }}</td><td>{{ q.run_accepted_rows }}</td>
<td>{{ q.run_quarantined_rows }}</td><td>{{ q.share }}</td><td>{{ q.expectations }}</td><td>{{ q.total_batches }}</td>
<td>{{ q.total_accepted_rows }}</td><td>{{ q.total_quarantined_rows }}</td></tr>
{% endfor %}</table>{% else %}<p>No batch loaded yet.</p>{% endif %}
</section>
</div>

<script type="application/json" id="chart-specs">{{ specs | safe }}</script>
<script>
(function () {
  var root = document.documentElement;
  var specs = JSON.parse(document.getElementById("chart-specs").textContent);
  var options = {{ embed_options | safe }};
  root.dataset.reportStatus = "rendering";
  function embed(id) {
    var el = document.getElementById("chart-" + id);
    var job;
    try { job = vegaEmbed(el, specs[id], options); } catch (err) { job = Promise.reject(err); }
    return job.then(
      function () { el.dataset.rendered = "true"; },
      function (err) { el.dataset.error = String(err); el.textContent = "Chart failed: " + err; reportError(id + ": " + err); throw err; });
  }
  var jobs = Object.keys(specs).map(embed);
  Promise.allSettled(jobs).then(function (results) {
    var ok = results.filter(function (r) { return r.status === "fulfilled"; }).length;
    root.dataset.chartsRendered = String(ok);
    root.dataset.chartsFailed = String(results.length - ok);
    root.dataset.reportStatus = "done";
  });
})();
</script>
</body>
</html>
""")


def vl_version() -> str:
    """The Vega-Lite version Altair writes specs for, as vl-convert names it (e.g. 'v6_4')."""
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_version_for_vl_convert()


def bundle_cache_dir() -> Path:
    """Per-user cache (the bundle depends only on package versions): $XDG_CACHE_HOME/crm-pipeline."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "crm-pipeline"


@lru_cache(maxsize=1)
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script that defines window.vegaEmbed (~0.9 MB). Bundling
    takes seconds, so the result is cached on disk per vl-convert and Vega-Lite version."""
    import vl_convert

    cached = bundle_cache_dir() / f"vega-embed-{vl_convert.__version__}-{vl_version()}.js"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle(vl_version=vl_version())
    if "</script" in bundle.lower():
        raise RuntimeError("the Vega bundle contains '</script' and cannot be inlined")
    with contextlib.suppress(OSError):  # no writable cache: bundle again next time
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".{cached.name}.{os.getpid()}")
        tmp.write_text(bundle, encoding="utf-8")
        tmp.replace(cached)
    return bundle


def bundle_versions() -> dict[str, str]:
    import vl_convert

    return {"vega": vl_convert.get_vega_version(), "vegalite": alt.SCHEMA_VERSION,
            "embed": vl_convert.get_vega_embed_version()}


def script_json(value) -> str:
    """JSON that is safe inside a <script> element (no '</' can close it early); NaN is refused."""
    return json.dumps(value, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")


def format_tile(value, fmt: str) -> str:
    return "n/a" if value is None else fmt.format(value)


def tiles(kpis: dict) -> list[tuple[str, str]]:
    return [(label, format_tile(kpis.get(column), fmt)) for column, label, fmt in TILES]


def quality_rows(data: ReportData) -> list[dict]:
    """The data-quality table: this run's and all loaded batches per source, with expectation results."""
    checks = {r["source"]: r for r in data.expectations.iter_rows(named=True)} if data.expectations.height else {}
    rows = []
    for row in data.data_quality.iter_rows(named=True):
        check = checks.get(row["source"])
        raw = row["run_raw_rows"]
        rows.append({k: f"{v:,}" if isinstance(v, int) else v for k, v in row.items()} | {
            "share": f"{row['run_quarantined_rows'] / raw:.2%}" if raw else "n/a",
            "expectations": f"{check['failed_expectations']} of {check['expectations']}" if check else "n/a",
        })
    return rows


def today_alerts(data: ReportData) -> list[dict]:
    if not data.kpi_alerts.height:
        return []
    return data.kpi_alerts.filter(pl.col("as_of_date") == data.as_of).to_dicts()


def render_page(data: ReportData, charts: dict[str, alt.TopLevelMixin], dialect: str) -> str:
    specs = {chart_id: chart.to_dict() for chart_id, chart in charts.items()}
    return TEMPLATE.render(
        as_of=data.as_of.isoformat(),
        dialect=dialect,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        bundle=javascript_bundle(),
        versions=bundle_versions(),
        tiles=tiles(data.kpis),
        alerts=today_alerts(data),
        has_kpis=bool(data.kpis),
        charts=[{"id": i, "heading": SECTIONS.get(i, i), "wide": i in WIDE, "no_data": is_no_data(spec)}
                for i, spec in specs.items()],
        quality=quality_rows(data),
        specs=script_json(specs),
        embed_options=script_json(EMBED_OPTIONS),
    )
