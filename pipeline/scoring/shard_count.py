"""How many shards crm_daily scores in (pipeline/scoring/shards.py), from the environment.

Importable without Polars: the DAG file reads it when it is parsed, so the scheduler and the
workers run the shape it parsed. 1 (the default) keeps the single score task.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

SHARDS_VARIABLE = "CRM_SCORE_SHARDS"


def shard_count(environ: Mapping[str, str] | None = None) -> int:
    """CRM_SCORE_SHARDS as a positive integer; 1 when unset or empty."""
    value = (os.environ if environ is None else environ).get(SHARDS_VARIABLE, "").strip() or "1"
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{SHARDS_VARIABLE} must be a positive integer, got {value!r}")
    return int(value)
