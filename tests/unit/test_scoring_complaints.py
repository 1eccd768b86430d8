"""Complaint measures on hand-timed tickets (as of 2025-12-31), then the CFPB sample against pandas."""
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from pipeline.scoring.complaints import COMPLAINT_SCHEMA, company_complaints, customer_complaints
from pipeline.scoring.config import ComplaintConfig

AS_OF = date(2025, 12, 31)
CONFIG = ComplaintConfig()  # resolution SLA: critical 24 h, high 72, medium 120, low 240; no severity 120
CFPB = Path(__file__).resolve().parents[3] / "shared" / "data" / "complaints" / "cfpb_complaints_2016_sample.csv"


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def tickets(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=COMPLAINT_SCHEMA)


def orders(rows: list[tuple]) -> pl.DataFrame:
    """(customer_id, order_id, ordered_at, status) order lines."""
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "order_id": pl.String,
                                      "ordered_at": pl.Datetime("us", "UTC"), "status": pl.String}, orient="row")


TICKETS = tickets([
    # A: answered in 2 h, resolved in 24 h within the 72 h SLA.
    {"ticket_id": "t1", "customer_id": "A", "opened_at": at(2025, 12, 1), "first_response_at": at(2025, 12, 1, 2),
     "resolved_at": at(2025, 12, 2), "severity": "high", "status": "closed", "is_reopened": False,
     "is_timely_response": True, "is_disputed": False},
    # A: answered in 10 h, resolved in 120 h, over the 24 h critical SLA; reopened once.
    {"ticket_id": "t2", "customer_id": "A", "opened_at": at(2025, 12, 10), "first_response_at": at(2025, 12, 10, 10),
     "resolved_at": at(2025, 12, 15), "severity": "critical", "status": "closed", "is_reopened": True,
     "is_timely_response": True},
    # A: open for 48 h of a 240 h SLA: not breached yet, so undecided.
    {"ticket_id": "t3", "customer_id": "A", "opened_at": at(2025, 12, 30), "severity": "low", "status": "open"},
    # B: resolved only after the as-of date, so open at its end, 1464 h old against a 120 h SLA.
    {"ticket_id": "t4", "customer_id": "B", "opened_at": at(2025, 11, 1), "first_response_at": at(2025, 11, 1, 4),
     "resolved_at": at(2026, 1, 5), "severity": "medium", "status": "closed", "is_reopened": False,
     "is_timely_response": False, "is_disputed": True},
    # B: opened after the as-of date: ignored.
    {"ticket_id": "t5", "customer_id": "B", "opened_at": at(2026, 1, 2), "status": "open"},
    # Anonymous: 6 h, 24 h, no severity (120 h SLA), no status but resolved, so closed.
    {"ticket_id": "t6", "customer_id": None, "opened_at": at(2025, 12, 20), "first_response_at": at(2025, 12, 20, 6),
     "resolved_at": at(2025, 12, 21), "is_reopened": False, "is_timely_response": True, "is_disputed": False},
    # C: no status and no resolution, so open; never answered.
    {"ticket_id": "t7", "customer_id": "C", "opened_at": at(2025, 12, 31, 12), "severity": "medium"},
])
ORDERS = orders([
    ("A", "o1", at(2025, 10, 1), "completed"), ("A", "o1", at(2025, 10, 1), "completed"),  # two lines, one order
    ("A", "o2", at(2025, 11, 1), "completed"), ("A", "o3", at(2025, 11, 2), "completed"),
    ("A", "o4", at(2025, 11, 3), "cancelled"),  # complaints can be about cancelled orders: counted
    ("A", "o5", at(2026, 1, 3), "completed"),  # after the as-of date: not counted
    ("B", "o6", at(2025, 10, 1), "completed"), ("B", "o7", at(2025, 10, 2), "returned"),
    ("D", "o8", at(2025, 10, 1), "completed"), (None, "g1", at(2025, 10, 1), "completed"),
])


@pytest.fixture(scope="module")
def per_customer() -> dict[str, dict]:
    out = customer_complaints(TICKETS, ORDERS, AS_OF, CONFIG)
    return {row["customer_id"]: row for row in out.iter_rows(named=True)}


def test_counts_and_open_tickets(per_customer):
    assert {c: (r["complaints"], r["open_complaints"]) for c, r in per_customer.items()} == {
        "A": (3, 1), "B": (1, 1), "C": (1, 1), "D": (0, 0)}


def test_response_and_resolution_medians(per_customer):
    a, b = per_customer["A"], per_customer["B"]
    assert (a["median_first_response_hours"], a["median_resolution_hours"]) == (6.0, 72.0)  # of (2, 10), (24, 120)
    assert (b["median_first_response_hours"], b["median_resolution_hours"]) == (4.0, None)  # resolved later


def test_sla_breach_share_and_reopen_rate(per_customer):
    a, b = per_customer["A"], per_customer["B"]
    assert a["sla_breach_share"] == 0.5  # t1 kept, t2 breached, t3 undecided
    assert a["reopen_rate"] == 0.5  # t3 has no reopen flag
    assert (b["sla_breach_share"], b["reopen_rate"]) == (1.0, 0.0)


def test_complaints_per_1000_orders(per_customer):
    assert per_customer["A"]["orders_placed"] == 4
    assert per_customer["A"]["complaints_per_1000_orders"] == 750.0
    assert per_customer["B"]["complaints_per_1000_orders"] == 500.0
    assert per_customer["D"]["complaints_per_1000_orders"] == 0.0
    assert per_customer["C"]["complaints_per_1000_orders"] is None  # no orders


def test_time_measures_are_guarded(per_customer):
    assert per_customer["A"]["complaint_times_status"] == "ok"
    assert per_customer["B"]["complaint_times_status"] == "ok"
    assert per_customer["C"]["complaint_times_status"] == "insufficient_data: no answered or resolved complaints"
    assert per_customer["D"]["complaint_times_status"] == "insufficient_data: no complaints"
    assert per_customer["D"]["median_resolution_hours"] is None


def test_company_measures_include_anonymous_tickets_and_guest_orders():
    company = company_complaints(TICKETS, ORDERS, AS_OF, CONFIG).row(0, named=True)
    assert (company["complaints"], company["open_complaints"]) == (6, 3)
    assert company["median_first_response_hours"] == 5.0  # of 2, 10, 4, 6
    assert company["median_resolution_hours"] == 24.0  # of 24, 120, 24
    assert company["sla_breach_share"] == 0.5  # t2 and t4 of t1, t2, t4, t6
    assert company["reopen_rate"] == 0.25  # t2 of t1, t2, t4, t6
    assert company["timely_response_share"] == 0.75  # t4 late of t1, t2, t4, t6
    assert company["dispute_share"] == pytest.approx(1 / 3)  # t4 of t1, t4, t6
    assert company["orders_placed"] == 8 and company["complaints_per_1000_orders"] == 750.0
    assert company["complaint_times_status"] == "ok"


def test_sla_hours_come_from_config():
    strict = ComplaintConfig(sla_hours={"high": 12.0}, default_sla_hours=500.0)
    company = company_complaints(TICKETS, ORDERS, AS_OF, strict).row(0, named=True)
    # t1 (24 h > 12) breaches now; t2 (120 h) and t4 (1464 h) against 500 h: only t4; t6 (24 h) keeps it.
    assert company["sla_breach_share"] == 0.5


def test_no_tickets_at_all():
    company = company_complaints(tickets([]), ORDERS, AS_OF, CONFIG).row(0, named=True)
    assert (company["complaints"], company["complaints_per_1000_orders"]) == (0, 0.0)
    assert company["median_first_response_hours"] is None and company["timely_response_share"] is None
    assert company["complaint_times_status"] == "insufficient_data: no complaints"


# --------------------------------------------------------------------------
# CFPB Consumer Complaint Database sample, 12-17 Sept 2016
# --------------------------------------------------------------------------


def yes_no(column: pd.Series, blank_means: bool | None) -> list[bool | None]:
    return [blank_means if pd.isna(v) else v == "Yes" for v in column]


def cfpb_tickets(frame: pd.DataFrame, blank_dispute_means: bool | None) -> pl.DataFrame:
    """As config/sources/examples/cfpb_complaints.yml stages them: sent to the company = first response,
    'In progress' = open."""
    received = pd.to_datetime(frame["Date received"], format="%m/%d/%Y", utc=True)
    sent = pd.to_datetime(frame["Date sent to company"], format="%m/%d/%Y", utc=True)
    return pl.DataFrame({
        "ticket_id": frame["Complaint ID"].astype(str).tolist(), "opened_at": received.tolist(),
        "first_response_at": sent.tolist(),
        "status": ["open" if r == "In progress" else "closed" for r in frame["Company response to consumer"]],
        "is_timely_response": yes_no(frame["Timely response?"], None),
        "is_disputed": yes_no(frame["Consumer disputed?"], blank_dispute_means),
    }, schema_overrides=COMPLAINT_SCHEMA).with_columns(
        pl.lit(None, dtype).alias(name) for name, dtype in COMPLAINT_SCHEMA.items()
        if name not in ("ticket_id", "opened_at", "first_response_at", "status", "is_timely_response", "is_disputed")
    ).select(list(COMPLAINT_SCHEMA))


@pytest.fixture(scope="module")
def cfpb() -> pd.DataFrame:
    return pd.read_csv(CFPB)


NO_ORDERS = orders([])


@pytest.mark.skipif(not CFPB.is_file(), reason=f"CFPB sample not found at {CFPB}")
@pytest.mark.parametrize("blank_dispute_means", [None, False])
def test_cfpb_shares_match_pandas(cfpb, blank_dispute_means):
    staged = cfpb_tickets(cfpb, blank_dispute_means)
    company = company_complaints(staged, NO_ORDERS, date(2016, 9, 30), CONFIG).row(0, named=True)
    timely = cfpb["Timely response?"].dropna()
    assert company["timely_response_share"] == pytest.approx((timely == "Yes").mean(), abs=1e-12)
    # A blank 'Consumer disputed?' is unknown (left out) or, if staging reads it so, "not disputed".
    disputed = cfpb["Consumer disputed?"]
    disputed = disputed.dropna() if blank_dispute_means is None else disputed.fillna("No")
    assert company["dispute_share"] == pytest.approx((disputed == "Yes").mean(), abs=1e-12)
    assert company["complaints"] == len(cfpb)
    assert company["open_complaints"] == (cfpb["Company response to consumer"] == "In progress").sum()
    days_to_company = (pd.to_datetime(cfpb["Date sent to company"], format="%m/%d/%Y")
                       - pd.to_datetime(cfpb["Date received"], format="%m/%d/%Y")).dt.days
    assert company["median_first_response_hours"] == pytest.approx(24 * days_to_company.median())
    assert company["complaints_per_1000_orders"] is None  # complaints about other companies: no orders
