"""A staged lake written by hand: rows as the stage step writes them, for scoring tests."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.schemas import UTC_TS


def write_staged(staging: Path, kind: str, rows: list[dict], schema: dict) -> None:
    """Rows as the stage step writes them: one part.parquet per batch_date, with lineage columns.

    Rows are given with a batch_date; a batch written again replaces its file, as a re-run does."""
    frame = pl.DataFrame(rows, schema={**schema, "batch_date": pl.Date}, orient="row")
    frame = frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("source_row_number"),
                               pl.lit("load-1").alias("load_id"))
    for (batch,), part in frame.group_by("batch_date", maintain_order=True):
        path = staging / kind / f"batch_date={batch.isoformat()}" / "part.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_parquet(path)


ORDER = {"order_id": pl.String, "line_number": pl.Int32, "customer_id": pl.String, "ordered_at": UTC_TS,
         "category": pl.String, "quantity": pl.Int32, "line_amount": pl.Float64, "line_cost_amount": pl.Float64,
         "status": pl.String}
SURVEY = {"response_id": pl.String, "customer_id": pl.String, "responded_at": UTC_TS, "per_reliability_score": pl.Float64,
          "exp_reliability_score": pl.Float64, "satisfaction_score": pl.Float64, "recommend_score": pl.Float64}
ANSWER = {"response_id": pl.String, "customer_id": pl.String, "responded_at": UTC_TS, "item": pl.String,
          "measure": pl.String, "score": pl.Float64}
COMPLAINT = {"ticket_id": pl.String, "customer_id": pl.String, "opened_at": UTC_TS, "first_response_at": UTC_TS,
             "resolved_at": UTC_TS, "category": pl.String, "severity": pl.String, "status": pl.String}


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


def order(oid, customer, day, amount, *, status="completed", category="books", batch=None, line=1) -> dict:
    return {"order_id": oid, "line_number": line, "customer_id": customer, "ordered_at": at(day), "category": category,
            "quantity": 1, "line_amount": amount, "line_cost_amount": round(amount * 0.6, 2), "status": status,
            "batch_date": batch or day}


def scoring_history(root: Path) -> Path:
    """A staged lake under `root`: ~600 customers with BG/NBD-like histories, plus the cases that
    couple customers: ties across the VIP cut, guests, an order re-exported to another customer, an
    order after the as-of date (2025-12-31), surveys with item answers, complaints."""
    rng = np.random.default_rng(5)
    start, rows = date(2025, 1, 1), []
    for i in range(600):
        day, rate, drop, spend = int(rng.integers(0, 240)), rng.gamma(2.0, 1 / 40), rng.beta(1, 4), rng.gamma(4, 15)
        k = 0
        while day <= 364:
            k += 1
            category = ["books", "toys", "garden", None][int(rng.integers(0, 4))]
            rows.append(order(f"o{i}-{k}", f"C{i:04d}", start + timedelta(days=day), round(rng.gamma(6, spend / 6), 2),
                              category=category, status="completed" if rng.random() > 0.1 else "returned"))
            if rng.random() < drop:
                break
            day += 1 + int(rng.exponential(1 / rate))
    # Twelve big spenders tied on spend (and on recency, frequency, tenure): the VIP cut (6 of ~600)
    # falls inside the tie and is split by customer_id, whatever shard each of them is in.
    rows += [order(f"tie-{i}", f"T{i:02d}", date(2025, 12, 1), 5000.0) for i in range(12)]
    rows += [order(f"guest-{i}", None, date(2025, 11, i + 1), 40.0) for i in range(5)]  # revenue, no customer row
    # A re-exported order moves to another customer: only the later version counts, for its new owner.
    rows += [order("moved", "C0001", date(2025, 6, 1), 70.0),
             order("moved", "C0002", date(2025, 6, 1), 75.0, batch=date(2025, 6, 3))]
    rows += [order("late", "C0003", date(2026, 1, 5), 99.0)]  # after the as-of date
    write_staged(root, "orders", rows, ORDER)
    customers = [f"C{i:04d}" for i in rng.choice(600, 150, replace=False)] + [None] * 10
    surveys, answers = [], []
    for n, customer in enumerate(customers):
        day = date(2025, 3, 1) + timedelta(days=n)
        scores = rng.integers(1, 8, size=3).astype(float)
        surveys.append({"response_id": f"r{n}", "customer_id": customer, "responded_at": at(day),
                        "per_reliability_score": float(scores.mean()), "exp_reliability_score": float(rng.integers(1, 8)),
                        "satisfaction_score": float(rng.integers(1, 8)), "recommend_score": float(rng.integers(0, 11)),
                        "batch_date": day})
        answers += [{"response_id": f"r{n}", "customer_id": customer, "responded_at": at(day), "item": f"q{j}",
                     "measure": "per_reliability", "score": float(s), "batch_date": day} for j, s in enumerate(scores)]
    write_staged(root, "surveys", surveys, SURVEY)
    write_staged(root, "survey_answers", answers, ANSWER)
    tickets = []
    for n, customer in enumerate([f"C{i:04d}" for i in rng.choice(600, 80, replace=False)] + [None] * 5):
        day = date(2025, 5, 1) + timedelta(days=2 * n)
        resolved = at(day + timedelta(days=int(rng.integers(0, 5))), 18) if rng.random() < 0.8 else None
        tickets.append({"ticket_id": f"t{n}", "customer_id": customer, "opened_at": at(day, 8),
                        "first_response_at": at(day, 10), "resolved_at": resolved, "category": "delivery",
                        "severity": ["low", "high"][n % 2], "status": "closed" if resolved else "open", "batch_date": day})
    write_staged(root, "complaints", tickets, COMPLAINT)
    return root
