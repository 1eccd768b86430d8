"""Benchmark our BG/NBD fit against lifetimes 0.11.3's BetaGeoFitter.

Simulates a customer summary from the BG/NBD generative process, fits it
with pipeline.scoring.clv.fit_bgnbd in this process and with lifetimes in
another interpreter (its own virtualenv, so the two environments never mix),
then prints both parameter sets, their relative differences, both
log-likelihoods on the same data and the time ratio.

    .venv/bin/python bench/clv_vs_lifetimes.py --lifetimes-python /tmp/lt/bin/python

By default first purchases fall on whole days over a year and purchase times
are truncated to whole days, as rfm_summary produces them from a
transaction log; --continuous keeps exact times (no two customers share a
row, the worst case for row compression).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# Run as a script from anywhere: make the repository's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.scoring.clv import bgnbd_log_likelihood, fit_bgnbd  # noqa: E402

PARAMS = ("r", "alpha", "a", "b")
# Fader, Hardie & Lee (2005) CDNOW estimates, weeks.
CDNOW_PARAMS = (0.2425945, 4.4136019, 0.7929199, 2.4258881)

LIFETIMES_FIT = """
import json, sys, time
import numpy as np
from lifetimes import BetaGeoFitter
data = np.load(sys.argv[1])
started = time.perf_counter()
fitter = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
elapsed = time.perf_counter() - started
print(json.dumps({"params": [float(fitter.params_[k]) for k in ("r", "alpha", "a", "b")], "seconds": elapsed}))
"""


def simulate_summary(
    n: int, params: tuple[float, float, float, float], *, seed: int, continuous: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, t_x, T) in weeks for n customers drawn from the BG/NBD process.

    lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); repeat purchases arrive
    as a Poisson process and the customer drops out after each one with
    probability p, so x = min(K, J) with K ~ Poisson(lambda T) arrivals and
    J ~ Geometric(p) purchases before dropout. Given K arrivals in (0, T],
    the x-th arrival time is T times a Beta(x, K - x + 1) order statistic.
    """
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 366, n) / 7.0
    arrivals = rng.poisson(rng.gamma(r, 1.0 / alpha, n) * T)
    x = np.minimum(arrivals, rng.geometric(rng.beta(a, b, n)))
    t_x = np.zeros(n)
    buyers = x > 0
    t_x[buyers] = T[buyers] * rng.beta(x[buyers], arrivals[buyers] - x[buyers] + 1)
    if not continuous:
        t_x = np.floor(t_x * 7.0) / 7.0
    return x.astype(float), t_x, T


def fit_ours(x: np.ndarray, t_x: np.ndarray, T: np.ndarray, repeats: int) -> tuple[tuple[float, ...], list[float]]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        fit = fit_bgnbd(x, t_x, T)
        seconds.append(time.perf_counter() - started)
    print(
        f"ours: converged={fit.converged} iterations={fit.iterations} starts={fit.starts_tried} "
        f"unique_rows={fit.n_unique_rows} ({fit.message})"
    )
    return (fit.r, fit.alpha, fit.a, fit.b), seconds


def fit_lifetimes(python: str, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> tuple[tuple[float, ...], float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "summary.npz"
        np.savez(path, frequency=x, recency=t_x, T=T)
        done = subprocess.run([python, "-c", LIFETIMES_FIT, str(path)], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return tuple(result["params"]), result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2005)
    parser.add_argument("--params", type=float, nargs=4, default=CDNOW_PARAMS, metavar=PARAMS)
    parser.add_argument("--continuous", action="store_true", help="keep exact purchase times")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of our fit")
    parser.add_argument("--lifetimes-python", help="interpreter of a virtualenv with lifetimes 0.11.3")
    args = parser.parse_args()

    x, t_x, T = simulate_summary(args.customers, tuple(args.params), seed=args.seed, continuous=args.continuous)
    print(f"{args.customers} customers, {int((x > 0).sum())} repeat buyers, max frequency {int(x.max())}")

    ours, our_seconds = fit_ours(x, t_x, T, args.repeats)
    print(f"{'':8}{'true':>12}{'ours':>12}")
    for name, true, mine in zip(PARAMS, args.params, ours):
        print(f"{name:8}{true:12.6f}{mine:12.6f}")
    print(f"ours: {min(our_seconds):.3f} s best, {statistics.median(our_seconds):.3f} s median of {args.repeats}")
    if args.lifetimes_python is None:
        return

    theirs, their_seconds = fit_lifetimes(args.lifetimes_python, x, t_x, T)
    print(f"{'':8}{'ours':>12}{'lifetimes':>12}{'rel diff':>12}")
    for name, mine, other in zip(PARAMS, ours, theirs):
        print(f"{name:8}{mine:12.6f}{other:12.6f}{mine / other - 1:12.2e}")
    ll_ours, ll_theirs = bgnbd_log_likelihood(ours, x, t_x, T), bgnbd_log_likelihood(theirs, x, t_x, T)
    print(f"log-likelihood: ours {ll_ours:.4f}, lifetimes {ll_theirs:.4f} (ours - lifetimes = {ll_ours - ll_theirs:.2e})")
    print(
        f"time: ours {statistics.median(our_seconds):.3f} s (median), lifetimes {their_seconds:.3f} s, "
        f"lifetimes / ours = {their_seconds / statistics.median(our_seconds):.1f}x"
    )


if __name__ == "__main__":
    main()
