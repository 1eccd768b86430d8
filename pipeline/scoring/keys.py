"""Integer keys for one scoring run: group-bys and joins on integers instead of strings.

At 10M order lines and 1M customers, hashing string keys is most of what a group-by costs.
daily_scores therefore numbers the customer ids once, in their sort order, scores on the UInt32
codes, and puts the ids back at the end. Ordering by code is ordering by id, so every tie rule
that sorts by customer_id (pyramid tiers) and every output order is unchanged. Order ids are only
ever counted (distinct orders), so they are replaced by their hash, checked to be one-to-one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

CODE = pl.UInt32


def sorted_codes(values: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(codes, names): each value's position among the distinct non-null values in sort order, and
    those values. Null stays null. One hash per value (a Categorical cast) and a sort of the
    distinct values only, never of the long column."""
    categorical = values if values.dtype == pl.Categorical else values.cast(pl.String).cast(pl.Categorical)
    distinct = categorical.unique().drop_nulls()
    names = distinct.cast(pl.String)
    order = names.arg_sort().to_numpy()
    physical = distinct.to_physical().to_numpy()
    table = np.zeros(int(physical.max()) + 1 if len(physical) else 1, dtype=np.uint32)
    table[physical[order]] = np.arange(len(order), dtype=np.uint32)
    codes = pl.Series(values.name, table, dtype=CODE).gather(categorical.to_physical())
    return codes, names.gather(order)


@dataclass(frozen=True)
class CustomerKeys:
    """The run's customer ids, sorted: code i is ids[i]."""

    ids: pl.Series

    @classmethod
    def encode(cls, frames: Sequence[pl.DataFrame | None]) -> tuple[CustomerKeys, list[pl.DataFrame | None]]:
        """One code space over every frame's `customer_id`; returns the keys and the frames with codes
        in place of the ids (None, or a frame without the column, is returned as it is)."""
        coded = [i for i, f in enumerate(frames) if f is not None and "customer_id" in f.columns]
        ids = pl.concat([frames[i]["customer_id"].cast(pl.String) for i in coded]) if coded else pl.Series([], dtype=pl.String)
        codes, names = sorted_codes(ids)
        out, start = list(frames), 0
        for i in coded:
            out[i] = frames[i].with_columns(codes.slice(start, frames[i].height).alias("customer_id"))
            start += frames[i].height
        return cls(names.alias("customer_id")), out

    def bound(self, customer_id: str) -> int:
        """The largest code whose id sorts at or before `customer_id` (-1 if none does): `id <=
        customer_id` is `code <= bound`, for ids that are not in this run's keys too."""
        return int(self.ids.search_sorted(customer_id, side="right")) - 1

    def decode(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The frame with its customer codes turned back into ids."""
        return frame.with_columns(self.ids.gather(frame["customer_id"]).alias("customer_id"))


def counting_keys(values: pl.Series) -> pl.Series:
    """UInt64 keys with exactly the distinct values of `values` (for n_unique): their hash, or, in the
    run where two values share a hash, the values themselves."""
    hashed = pl.select(pl.when(values.is_not_null()).then(values.hash())).to_series().alias(values.name)
    return hashed if hashed.n_unique() == values.n_unique() else values
