"""Cross-chunk supersession lookups, side by side: Polars `is_in` against every later chunk's key
hashes (the old path) and pipeline.stage.LaterKeys (a sorted hash array), on chunks of random order
keys the size a staging chunk of order lines has.

    .venv/bin/python -m bench.later_keys 10 40     # chunk counts; 77 is L's
"""
from __future__ import annotations

import sys
import time

import numpy as np
import polars as pl

from pipeline.stage import LaterKeys

CHUNK_ROWS = 1_300_000
KEY = ["order_id", "line_number"]


def chunks(count: int) -> list[pl.DataFrame]:
    rng = np.random.default_rng(1)
    return [pl.DataFrame({"order_id": pl.Series(rng.integers(0, 10**12, CHUNK_ROWS)).cast(pl.String),
                          "line_number": rng.integers(1, 5, CHUNK_ROWS)}) for _ in range(count)]


def with_is_in(frames: list[pl.DataFrame]) -> float:
    started, later = time.perf_counter(), None
    for frame in frames:
        hashes = frame.select(pl.struct(KEY).hash()).to_series()
        if later is not None:
            hashes.is_in(later.implode()).sum()
        later = hashes if later is None else later.append(hashes)
    return time.perf_counter() - started


def with_later_keys(frames: list[pl.DataFrame]) -> float:
    started, later = time.perf_counter(), LaterKeys(KEY)
    for frame in frames:
        hashes = later.hashes_of(frame)
        later.held(frame, hashes)
        later.add(frame, hashes)
    return time.perf_counter() - started


def main() -> None:
    print("| chunks | keys | is_in, s | LaterKeys, s | ratio |\n|---:|---:|---:|---:|---:|")
    for count in map(int, sys.argv[1:] or ["10", "40"]):
        frames = chunks(count)
        old, new = with_is_in(frames), with_later_keys(frames)
        print(f"| {count} | {count * CHUNK_ROWS / 1e6:.0f}M | {old:.1f} | {new:.1f} | {old / new:.1f}× |", flush=True)


if __name__ == "__main__":
    main()
