"""How many shards crm_daily scores in (pipeline/scoring/shards.py), from the environment.

Importable without Polars: the DAG file reads it when it is parsed, so the scheduler and the
workers run the shape it parsed. 1 (the default) keeps the single score task.
"""
from __future__ import annotations

import os
from collections.abc import Mapping

from pipeline.settings import positive_int

SHARDS_VARIABLE = "CRM_SCORE_SHARDS"


def shard_count(environ: Mapping[str, str] | None = None) -> int:
    """CRM_SCORE_SHARDS as a positive integer; 1 when unset or empty."""
    return positive_int(os.environ if environ is None else environ, SHARDS_VARIABLE, 1)
