"""Canonical columns of each source kind after standardization, with their Polars types."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.kinds import KINDS

UTC_TS = pl.Datetime("us", "UTC")
RATER_DIMENSIONS = {  # SERVQUAL's 22 items (Parasuraman, Zeithaml & Berry 1988)
    "tangibles": 4,
    "reliability": 5,
    "responsiveness": 4,
    "assurance": 4,
    "empathy": 5,
}
LIKERT_ITEMS = [f"{side}_{dim}_{i}" for side in ("exp", "per") for dim, n in RATER_DIMENSIONS.items() for i in range(1, n + 1)]


@dataclass(frozen=True)
class SourceSchema:
    kind: str
    columns: dict[str, pl.DataType]
    business_key: tuple[str, ...]
    event_at: str  # the timestamp that places a row in time (as-of scoring, "not in the future")

    @property
    def timestamps(self) -> list[str]:
        return [c for c, t in self.columns.items() if t == UTC_TS]


SCHEMAS: dict[str, SourceSchema] = {
    "customers": SourceSchema(
        "customers",
        {"customer_id": pl.String, "full_name": pl.String, "email": pl.String, "phone": pl.String,
         "country": pl.String, "city": pl.String, "signed_up_at": UTC_TS},
        ("customer_id",),
        "signed_up_at",
    ),
    "orders": SourceSchema(
        "orders",
        {"order_id": pl.String, "line_number": pl.Int32, "customer_id": pl.String, "ordered_at": UTC_TS,
         "product_id": pl.String, "category": pl.String, "quantity": pl.Int32, "unit_price": pl.Float64,
         "unit_cost": pl.Float64, "currency": pl.String, "channel": pl.String, "status": pl.String},
        ("order_id", "line_number"),
        "ordered_at",
    ),
    "surveys": SourceSchema(
        "surveys",
        {"response_id": pl.String, "customer_id": pl.String, "order_id": pl.String, "responded_at": UTC_TS,
         **{c: pl.Int8 for c in LIKERT_ITEMS},
         "recommend_score": pl.Int8, "satisfaction_score": pl.Int8, "comment": pl.String},
        ("response_id",),
        "responded_at",
    ),
    "complaints": SourceSchema(
        "complaints",
        {"ticket_id": pl.String, "customer_id": pl.String, "order_id": pl.String, "opened_at": UTC_TS,
         "first_response_at": UTC_TS, "resolved_at": UTC_TS, "category": pl.String, "severity": pl.String,
         "channel": pl.String, "is_reopened": pl.Boolean, "description": pl.String},
        ("ticket_id",),
        "opened_at",
    ),
}
assert tuple(SCHEMAS) == KINDS
LINEAGE = ["_source_file", "_row_number", "_load_id", "_batch_date"]
