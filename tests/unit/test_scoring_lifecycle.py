"""Churn-risk bands and lifecycle stages on literal purchase histories (as of 2025-12-31)."""
from datetime import date, datetime, timezone

import polars as pl
import pytest

from pipeline.scoring.config import LifecycleConfig
from pipeline.scoring.lifecycle import churn_risk_band, lifecycle_stages
from pipeline.scoring.rfm import completed_lines_as_of

AS_OF = date(2025, 12, 31)
CONFIG = LifecycleConfig()  # new 30, active 90, cooling 180, lost 365, reactivated 90


def purchases(rows) -> pl.LazyFrame:
    """(customer_id, order_id, day, status) -> order lines."""
    return pl.DataFrame(
        [(c, o, datetime(*d, 12, tzinfo=timezone.utc), s) for c, o, d, s in rows],
        schema={"customer_id": pl.String, "order_id": pl.String, "ordered_at": pl.Datetime("us", "UTC"),
                "status": pl.String},
        orient="row",
    ).with_columns(pl.lit(1, pl.Int32).alias("quantity")).lazy()


def stages(rows) -> dict[str, str]:
    out = lifecycle_stages(completed_lines_as_of(purchases(rows), AS_OF), AS_OF, CONFIG)
    return dict(out.select("customer_id", "lifecycle_stage").rows())


def test_churn_bands_split_at_the_cut_offs_left_closed():
    p = pl.DataFrame({"p": [0.0, 0.29, 0.3, 0.69, 0.7, 1.0, None]})
    bands = p.select(churn_risk_band(pl.col("p"), (0.3, 0.7), ("high", "medium", "low")).alias("b"))["b"].to_list()
    assert bands == ["high", "high", "medium", "medium", "low", "low", None]


def test_churn_bands_follow_configured_cut_offs():
    p = pl.DataFrame({"p": [0.05, 0.2, 0.5, 0.95]})
    bands = p.select(churn_risk_band(pl.col("p"), (0.1, 0.4, 0.9), ("critical", "high", "medium", "low")).alias("b"))
    assert bands["b"].to_list() == ["critical", "high", "medium", "low"]


@pytest.mark.parametrize(
    ("rows", "stage"),
    [
        ([("x", "o1", (2025, 12, 10), "completed")], "new"),  # 21 days since the first purchase
        # 30 days since the first purchase is still new, even with a second order since.
        ([("x", "o1", (2025, 12, 1), "completed"), ("x", "o2", (2025, 12, 20), "completed")], "new"),
        ([("x", "o1", (2025, 6, 1), "completed"), ("x", "o2", (2025, 11, 1), "completed")], "active"),  # 60 days
        ([("x", "o1", (2025, 11, 1), "completed")], "cooling"),  # one-time buyer, 60 days: never active
        ([("x", "o1", (2025, 3, 1), "completed"), ("x", "o2", (2025, 10, 1), "completed")], "cooling"),  # 91 days
        ([("x", "o1", (2025, 1, 1), "completed"), ("x", "o2", (2025, 3, 1), "completed")], "at_risk"),  # 305 days
        ([("x", "o1", (2024, 1, 1), "completed"), ("x", "o2", (2024, 6, 1), "completed")], "lost"),  # 578 days
        # Gap of exactly 365 days is not a return; 365 days since the last purchase is still at risk.
        ([("x", "o1", (2024, 1, 1), "completed"), ("x", "o2", (2024, 12, 31), "completed")], "at_risk"),
        # Returned on 2025-12-01 after 700 days away.
        ([("x", "o1", (2024, 1, 1), "completed"), ("x", "o2", (2025, 12, 1), "completed")], "reactivated"),
        # Two orders on one day make a repeat buyer (distinct orders, like RFM frequency): 46 days -> active.
        ([("x", "o1", (2025, 11, 15), "completed"), ("x", "o2", (2025, 11, 15), "completed")], "active"),
        # The cancelled order does not count: a one-time buyer 213 days ago.
        ([("x", "o1", (2025, 6, 1), "completed"), ("x", "o2", (2025, 12, 20), "cancelled")], "at_risk"),
    ],
)
def test_lifecycle_stage(rows, stage):
    assert stages(rows) == {"x": stage}


def test_a_return_long_ago_is_no_longer_reactivated():
    rows = [("x", "o1", (2023, 1, 1), "completed"), ("x", "o2", (2025, 1, 10), "completed"),
            ("x", "o3", (2025, 12, 20), "completed")]
    out = lifecycle_stages(completed_lines_as_of(purchases(rows), AS_OF), AS_OF, CONFIG).row(0, named=True)
    assert out["reactivated_on"] == date(2025, 1, 10)  # the latest gap over 365 days ended here
    assert out["days_since_reactivation"] == 355
    assert out["lifecycle_stage"] == "active"


def test_guests_and_later_orders_are_left_out():
    rows = [(None, "g1", (2025, 12, 1), "completed"), ("x", "o1", (2025, 6, 1), "completed"),
            ("x", "o2", (2026, 1, 2), "completed")]
    out = lifecycle_stages(completed_lines_as_of(purchases(rows), AS_OF), AS_OF, CONFIG)
    assert out.select("customer_id", "completed_orders", "days_since_last_purchase").rows() == [("x", 1, 213)]


def test_thresholds_are_configurable():
    rows = [("x", "o1", (2025, 6, 1), "completed"), ("x", "o2", (2025, 11, 1), "completed")]  # 60 days
    tight = LifecycleConfig(new_days=10, active_days=30, cooling_days=45, lost_days=50, reactivated_days=20)
    out = lifecycle_stages(completed_lines_as_of(purchases(rows), AS_OF), AS_OF, tight)
    assert out["lifecycle_stage"].to_list() == ["lost"]
    # The 153-day gap before 2025-11-01 is a return under lost_days=50; 60 days on it is no longer recent.
    assert out["reactivated_on"].to_list() == [date(2025, 11, 1)]


def test_inconsistent_thresholds_are_rejected():
    with pytest.raises(ValueError, match="lifecycle thresholds"):
        LifecycleConfig(active_days=200, cooling_days=100)
    with pytest.raises(ValueError, match="reactivated_days"):
        LifecycleConfig(reactivated_days=120)
    with pytest.raises(ValueError, match="one label more"):
        LifecycleConfig(churn_band_cutoffs=(0.5,), churn_band_labels=("a", "b", "c"))
