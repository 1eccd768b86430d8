"""One place that maps the environment to resources: paths, the warehouse and secrets.

Locally everything defaults to an embedded DuckDB warehouse under var/; production sets
CRM_WAREHOUSE_URL to a postgresql+psycopg:// URL and CRM_PII_SALT from its secret store.
"""
from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    home: Path  # landing, staging and score lakes plus the embedded warehouse
    warehouse_url: str
    sources_file: Path
    fx_rates_file: Path
    scoring_file: Path  # cut-offs, weights, SLAs and KPI thresholds (pipeline/scoring/config.py)
    base_currency: str
    pii_salt: str
    # Staged order lines one score pass holds; more are scored in customer shards, one at a time.
    score_shard_lines: int = 25_000_000

    @property
    def is_embedded(self) -> bool:
        return self.warehouse_url.startswith("duckdb:")

    def lake(self, layer: str) -> Path:
        return self.home / layer


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get("CRM_HOME", PROJECT_ROOT / "var")).resolve()
    url = env.get("CRM_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}"
    return Settings(
        home=home,
        warehouse_url=url,
        sources_file=Path(env.get("CRM_SOURCES", PROJECT_ROOT / "config" / "sources" / "sample.yml")),
        fx_rates_file=Path(env.get("CRM_FX_RATES", PROJECT_ROOT / "config" / "fx_rates.csv")),
        scoring_file=Path(env.get("CRM_SCORING_CONFIG", PROJECT_ROOT / "config" / "scoring.yml")),
        base_currency=env.get("CRM_BASE_CURRENCY", "USD"),
        pii_salt=_pii_salt(env, home, embedded=url.startswith("duckdb:")),
        score_shard_lines=positive_int(env, "CRM_SCORE_SHARD_LINES", Settings.score_shard_lines),
    )


def duckdb_memory_limit(env: Mapping[str, str] | None = None) -> str:
    """How much memory the embedded warehouse's buffer manager may take before it spills to disk
    (DuckDB's own default is 80% of RAM): CRM_DUCKDB_MEMORY_LIMIT, a size or a share of RAM. Half,
    by default, so a load beside other tasks spills instead of running the machine out of memory."""
    return (os.environ if env is None else env).get("CRM_DUCKDB_MEMORY_LIMIT", "").strip() or "50%"


def positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """The variable as a positive integer; `default` when unset or empty."""
    value = env.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _pii_salt(env: dict[str, str], home: Path, *, embedded: bool) -> str:
    """The salt never lives in the repo: production must pass it; a local run mints one under var/."""
    if env.get("CRM_PII_SALT"):
        return env["CRM_PII_SALT"]
    if not embedded:
        raise RuntimeError("CRM_PII_SALT must be set when the warehouse is not the embedded default")
    path = home / ".pii_salt"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text().strip()
