"""Issue 4's check on UCI Online Retail: our RFM frequency and monetary value equal a plain pandas
computation with the same rules, customer by customer.

Our side runs the real path in-process, without Airflow: extract -> stage (standardize, GX, quarantine)
-> staging lake -> the daily scores. The pandas side applies the rules to the raw CSV on its own.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd
import polars as pl

from pipeline.extract import extract
from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.daily import daily_scores, staged_inputs
from pipeline.settings import PROJECT_ROOT
from pipeline.sources import load_sources_file
from pipeline.stage import StageContext, stage, write_partitions
from pipeline.tasks import fx_rates, interval_end

DATA = Path(os.environ.get("CRM_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
CSV = DATA / "online_retail" / "online_retail_uci352.csv.gz"
AS_OF = date(2011, 12, 9)  # the last invoice day


def pandas_rfm() -> pd.DataFrame:
    """frequency = distinct invoices, monetary = Σ Quantity × UnitPrice (GBP), per CustomerID, after:
    dropping exact duplicate rows, cancellations (InvoiceNo starting with C), quantity <= 0, missing
    CustomerID, and negative unit prices (bad-debt adjustments; quarantined on our side)."""
    raw = pd.read_csv(CSV, dtype=str, keep_default_na=False, na_values=[""])
    raw = raw.drop_duplicates()
    quantity, price = raw["Quantity"].astype(int), raw["UnitPrice"].astype(float)
    keep = ~raw["InvoiceNo"].str.startswith("C") & (quantity > 0) & raw["CustomerID"].notna() & (price >= 0)
    lines = raw[keep].assign(amount=quantity[keep] * price[keep])
    return lines.groupby("CustomerID").agg(frequency=("InvoiceNo", "nunique"), monetary=("amount", "sum"))


def our_rfm(tmp_path: Path) -> pl.DataFrame:
    config = load_sources_file(PROJECT_ROOT / "config" / "sources" / "examples" / "online_retail.yml")
    source = config.sources["orders"]
    extracted = extract(source, None, AS_OF, tmp_path / "landing")
    landed = pl.read_parquet(extracted["path"])
    ctx = StageContext(source, interval_end(AS_OF), fx_rates(PROJECT_ROOT / "config" / "fx_rates.csv", config.base_currency),
                       None, None, "salt")
    staged = stage("orders", landed, ctx)  # no gx_root: an ephemeral GX context
    write_partitions(staged.accepted, tmp_path / "staging" / "orders", [b["batch_date"] for b in extracted["batches"]])
    tables = daily_scores(**staged_inputs(tmp_path / "staging", AS_OF), as_of=AS_OF, config=ScoringConfig())
    return tables["customer_score_daily"]


def test_rfm_frequency_and_monetary_match_pandas_customer_by_customer(tmp_path, monkeypatch):
    assert CSV.exists(), f"the UCI Online Retail export is expected at {CSV} (set CRM_SHARED_DATA)"
    monkeypatch.setenv("CRM_DATA", str(DATA))  # the example's base_dir
    expected = pandas_rfm()
    ours = (our_rfm(tmp_path).select("customer_id", pl.col("frequency").alias("frequency_ours"), "monetary_amount")
            .to_pandas().set_index("customer_id"))
    assert len(expected) > 4000
    assert sorted(ours.index) == sorted(expected.index)
    joined = expected.join(ours, how="inner")
    assert len(joined) == len(expected)
    wrong_frequency = joined[joined["frequency"] != joined["frequency_ours"]]
    assert wrong_frequency.empty, wrong_frequency.head(10)
    error = (joined["monetary"] - joined["monetary_amount"]).abs()
    assert error.max() <= 1e-6, joined[error > 1e-6].head(10)
