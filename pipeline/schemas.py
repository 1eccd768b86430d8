"""Canonical columns of each source kind, with their Polars types, as the source mapping produces them."""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipeline.kinds import KINDS

UTC_TS = pl.Datetime("us", "UTC")
RATER_DIMENSIONS = ("tangibles", "reliability", "responsiveness", "assurance", "empathy")
# Survey measures a Likert mapping can fill; each becomes `<measure>_score`, the mean of its items on
# the common scale (1-7 for service quality and satisfaction, 0-10 for the recommend item behind NPS).
LIKERT_MEASURES = (
    *(f"per_{d}" for d in RATER_DIMENSIONS), *(f"exp_{d}" for d in RATER_DIMENSIONS), "exp_overall",
    "satisfaction", "recommend",
)
COMMON_SCALE = {"recommend": (0.0, 10.0)}
DEFAULT_COMMON_SCALE = (1.0, 7.0)


def common_scale(measure: str) -> tuple[float, float]:
    return COMMON_SCALE.get(measure, DEFAULT_COMMON_SCALE)


@dataclass(frozen=True)
class SourceSchema:
    kind: str
    columns: dict[str, pl.DataType]
    required: tuple[str, ...]  # must be in the export (or mapped, derived or constant); the rest may be absent
    business_key: tuple[str, ...]
    event_at: str  # the timestamp that places a row in time (batching, as-of scoring, "not in the future")
    identity_columns: tuple[str, ...] = ("customer_email", "customer_phone")  # matched to a customer, then dropped

    @property
    def timestamps(self) -> list[str]:
        return [c for c, t in self.columns.items() if t == UTC_TS]


SCHEMAS: dict[str, SourceSchema] = {
    "customers": SourceSchema(
        "customers",
        {"customer_id": pl.String, "full_name": pl.String, "email": pl.String, "phone": pl.String,
         "country": pl.String, "city": pl.String, "signed_up_at": UTC_TS},
        ("customer_id",),
        ("customer_id",),
        "signed_up_at",
        identity_columns=(),
    ),
    "orders": SourceSchema(
        "orders",
        {"order_id": pl.String, "line_number": pl.Int32, "customer_id": pl.String, "ordered_at": UTC_TS,
         "product_id": pl.String, "category": pl.String, "quantity": pl.Int32, "unit_price": pl.Float64,
         "unit_cost": pl.Float64, "currency": pl.String, "channel": pl.String, "status": pl.String,
         "customer_country": pl.String},
        ("order_id", "line_number", "ordered_at", "quantity", "unit_price", "currency"),
        ("order_id", "line_number"),
        "ordered_at",
    ),
    "surveys": SourceSchema(
        "surveys",
        {"response_id": pl.String, "customer_id": pl.String, "order_id": pl.String, "responded_at": UTC_TS,
         "comment": pl.String},
        ("response_id", "responded_at"),
        ("response_id",),
        "responded_at",
    ),
    "complaints": SourceSchema(
        "complaints",
        {"ticket_id": pl.String, "customer_id": pl.String, "order_id": pl.String, "opened_at": UTC_TS,
         "first_response_at": UTC_TS, "resolved_at": UTC_TS, "category": pl.String, "severity": pl.String,
         "channel": pl.String, "status": pl.String, "is_reopened": pl.Boolean, "is_timely_response": pl.Boolean,
         "is_disputed": pl.Boolean, "company_response": pl.String, "description": pl.String},
        ("ticket_id", "opened_at", "category"),
        ("ticket_id",),
        "opened_at",
    ),
}
assert tuple(SCHEMAS) == KINDS
LINEAGE = ["_source_file", "_row_number", "_load_id", "_batch_date"]
READ_ERROR = "_read_error"  # "<reason_code>: <detail>" on records the reader could not split (ragged CSV, bad JSON)
RAW_FIELDS = "_raw_fields"  # the original fields of such rows, as JSON, for the quarantine
