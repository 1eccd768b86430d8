"""Integer keys for a scoring run (pipeline/scoring/keys.py): codes in id order, exact distinct counts,
and the daily composition on codes giving the rows of the same composition on string ids."""
from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from pipeline.scoring.config import ScoringConfig
from pipeline.scoring.daily import daily_scores, staged_inputs
from pipeline.scoring.keys import CustomerKeys, counting_keys, sorted_codes
from pipeline.scoring.kpi import customer_scores
from tests.support.staged import scoring_history

AS_OF = date(2025, 12, 31)


@pytest.fixture(scope="module")
def staging(tmp_path_factory):
    return scoring_history(tmp_path_factory.mktemp("staging"))


def test_sorted_codes_number_distinct_values_in_sort_order_and_keep_nulls():
    codes, names = sorted_codes(pl.Series("x", ["b", None, "a", "b", "é", "B"]))
    assert names.to_list() == ["B", "a", "b", "é"]  # byte order, as Polars sorts strings
    assert codes.to_list() == [2, None, 1, 2, 3, 0]
    assert codes.dtype == pl.UInt32
    empty, none = sorted_codes(pl.Series("x", [], dtype=pl.String))
    assert empty.is_empty() and none.is_empty()


def test_customer_keys_share_one_code_space_and_decode_back():
    orders = pl.DataFrame({"customer_id": ["z", "a", None], "v": [1, 2, 3]})
    surveys = pl.DataFrame({"customer_id": ["m", "z"]})
    keys, (coded_orders, nothing, other, coded_surveys) = CustomerKeys.encode(
        [orders, None, pl.DataFrame({"x": [1]}), surveys])
    assert keys.ids.to_list() == ["a", "m", "z"]
    assert coded_orders["customer_id"].to_list() == [2, 0, None] and coded_surveys["customer_id"].to_list() == [1, 2]
    assert nothing is None and other.columns == ["x"]
    assert keys.decode(coded_orders).equals(orders)


def test_counting_keys_count_exactly_and_fall_back_to_the_values_on_a_collision(monkeypatch):
    ids = pl.Series("order_id", ["o1", "o2", None, "o1"])
    keys = counting_keys(ids)
    assert keys.dtype == pl.UInt64 and keys.n_unique() == ids.n_unique() and keys.null_count() == 1
    # Two ids sharing a hash would merge two orders: the ids themselves are used instead.
    monkeypatch.setattr(pl.Series, "hash", lambda self, *args, **kwargs: pl.Series([7] * len(self), dtype=pl.UInt64))
    assert counting_keys(ids).equals(ids)


def test_daily_customer_rows_on_codes_equal_the_composition_on_ids(staging):
    inputs = staged_inputs(staging, AS_OF)
    on_codes = daily_scores(**inputs, as_of=AS_OF)["customer_score_daily"]
    on_ids = customer_scores(inputs["orders"], inputs["surveys"], inputs["complaints"], AS_OF, ScoringConfig())
    assert on_codes.height > 500 and on_codes.equals(on_ids)
