"""Our BG/NBD + Gamma-Gamma fits and predictions against lifetimes 0.11.3, on one simulated summary.

The summary is drawn from the models' own generative processes with the published CDNOW parameters,
so both fitters have a well-identified optimum to find. Each side fits and predicts in its own
process (lifetimes in its own virtualenv: bench/lifetimes_worker.py), timed the same way:

* fit: BG/NBD on (x, t_x, T), Gamma-Gamma on the repeat buyers' (x, m);
* predict, per customer: P(alive), expected purchases over `HORIZON` periods, expected average
  value, and lifetimes' 12-month discounted CLV (monthly steps of 4.345 weeks, 1% a month).

Standalone (the harness, `make bench`, runs the same through bench.run):

    .venv/bin/python -m bench.clv_vs_lifetimes --customers 1000000 --lifetimes-python var/bench/lifetimes-venv/bin/python
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PARAMS = ("r", "alpha", "a", "b")
GG_PARAMS = ("p", "q", "v")
# Fader, Hardie & Lee (2005) BG/NBD and Fader & Hardie (2013) Gamma-Gamma CDNOW estimates, weeks.
CDNOW_PARAMS = (0.2425945, 4.4136019, 0.7929199, 2.4258881)
CDNOW_GG_PARAMS = (6.25, 3.74, 15.44)
HORIZON = 52.0  # weeks
CLV_MONTHS, WEEKS_PER_MONTH, MONTHLY_DISCOUNT = 12, 4.345, 0.01  # lifetimes' CLV defaults for freq="W"
PREDICTIONS = ("p_alive", "expected_purchases", "expected_average_value", "clv")


def simulate_summary(n: int, *, seed: int, params=CDNOW_PARAMS, gg_params=CDNOW_GG_PARAMS,
                     continuous: bool = False) -> dict[str, np.ndarray]:
    """(frequency, recency, T, monetary_value) in weeks for n customers.

    BG/NBD: lambda ~ Gamma(r, rate alpha), p ~ Beta(a, b); x = min(K, J) with K ~ Poisson(lambda T)
    arrivals and J ~ Geometric(p) purchases before dropout; given K arrivals in (0, T], the x-th
    arrival time is T times a Beta(x, K - x + 1) order statistic. First purchases fall on whole days
    over a year and, unless `continuous`, purchase times are cut to whole days as a transaction
    log gives them. Gamma-Gamma: nu ~ Gamma(q, rate v); the mean of x purchases ~ Gamma(p x, rate nu x).
    """
    r, alpha, a, b = params
    p, q, v = gg_params
    rng = np.random.default_rng(seed)
    T = rng.integers(1, 366, n) / 7.0
    arrivals = rng.poisson(rng.gamma(r, 1.0 / alpha, n) * T)
    x = np.minimum(arrivals, rng.geometric(rng.beta(a, b, n)))
    t_x = np.zeros(n)
    buyers = x > 0
    t_x[buyers] = T[buyers] * rng.beta(x[buyers], arrivals[buyers] - x[buyers] + 1)
    if not continuous:
        t_x = np.floor(t_x * 7.0) / 7.0
    nu = rng.gamma(q, 1.0 / v, n)
    m = np.zeros(n)
    m[buyers] = rng.gamma(p * x[buyers], 1.0 / (nu[buyers] * x[buyers]))
    return {"frequency": x.astype(float), "recency": t_x, "T": T, "monetary_value": m}


def save_summary(summary: dict[str, np.ndarray], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **summary)


def load_summary(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


# --- our side -----------------------------------------------------------------------------------


def fit_ours(summary: dict[str, np.ndarray]):
    from pipeline.scoring.clv import fit_bgnbd, fit_gamma_gamma

    x, t_x, T, m = (summary[k] for k in ("frequency", "recency", "T", "monetary_value"))
    return fit_bgnbd(x, t_x, T), fit_gamma_gamma(x, m)


def predict_ours(fitted, summary: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from pipeline.scoring.clv import discounted_clv, expected_average_value, expected_purchases, p_alive

    bgnbd, gg = fitted
    x, t_x, T, m = (summary[k] for k in ("frequency", "recency", "T", "monetary_value"))
    return {
        "p_alive": p_alive(bgnbd, x, t_x, T),
        "expected_purchases": expected_purchases(bgnbd, HORIZON, x, t_x, T),
        "expected_average_value": expected_average_value(gg, x, m),
        # lifetimes discounts once a month; the same per-week rate compounds to it over 4.345 weeks
        "clv": discounted_clv(bgnbd, gg, x, t_x, T, m, horizon_periods=CLV_MONTHS * WEEKS_PER_MONTH,
                              discount_rate_per_period=(1 + MONTHLY_DISCOUNT) ** (1 / WEEKS_PER_MONTH) - 1,
                              step=WEEKS_PER_MONTH),
    }


def params_of(fitted) -> dict[str, float]:
    bgnbd, gg = fitted
    return {**{k: getattr(bgnbd, k) for k in PARAMS}, **{k: getattr(gg, k) for k in GG_PARAMS}}


def diagnostics_of(fitted) -> dict:
    bgnbd, gg = fitted
    return {"bgnbd_converged": bgnbd.converged, "bgnbd_unique_rows": bgnbd.n_unique_rows,
            "gamma_gamma_converged": gg.converged, "repeat_buyers": gg.n_customers}


def save_predictions(predicted: dict[str, np.ndarray], path: str) -> None:
    np.savez(path, **predicted)


# --- comparison ---------------------------------------------------------------------------------


def compare(ours: dict, theirs: dict, our_predictions: str, their_predictions: str, summary: dict) -> dict:
    """Parameter and prediction agreement, log-likelihoods of both parameter sets, and time ratios."""
    from pipeline.scoring.clv import bgnbd_log_likelihood, gamma_gamma_log_likelihood

    x, t_x, T, m = (summary[k] for k in ("frequency", "recency", "T", "monetary_value"))
    rel = {k: ours["params"][k] / theirs["params"][k] - 1 for k in (*PARAMS, *GG_PARAMS)}
    a, b = load_summary(our_predictions), load_summary(their_predictions)
    predictions = {k: float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(b[k]), 1e-12))) for k in PREDICTIONS}

    def loglik(side: dict) -> dict[str, float]:
        p = side["params"]
        return {"bgnbd": bgnbd_log_likelihood([p[k] for k in PARAMS], x, t_x, T),
                "gamma_gamma": gamma_gamma_log_likelihood([p[k] for k in GG_PARAMS], x, m)}

    our_time, their_time = _best(ours), _best(theirs)
    return {
        "customers": len(x), "params_ours": ours["params"], "params_lifetimes": theirs["params"],
        "params_rel_diff": rel, "max_params_rel_diff": max(abs(v) for v in rel.values()),
        "predictions_max_rel_diff": predictions,
        "log_likelihood_ours": loglik(ours), "log_likelihood_lifetimes": loglik(theirs),
        "seconds_ours": our_time, "seconds_lifetimes": their_time,
        "speedup": {k: their_time[k] / our_time[k] for k in our_time},
        "diagnostics": ours.get("diagnostics"),
    }


def _best(side: dict) -> dict[str, float]:
    """Best of the repeated timings; BG/NBD alone where the side reports it apart."""
    fit, predict = min(side["fit_seconds"]), min(side["predict_seconds"])
    best = {"fit": fit, "predict": predict, "fit_and_predict": fit + predict}
    if "bgnbd_fit_seconds" in side:
        best["bgnbd_fit"] = min(side["bgnbd_fit_seconds"])
    return best


def run(customers: int, lifetimes_python: str, work: Path, *, seed: int = 2005, repeats: int = 3,
        continuous: bool = False, log: Path | None = None) -> dict:
    """Simulates the summary, runs both sides as child jobs, returns the comparison."""
    from bench.measure import run_job

    summary = simulate_summary(customers, seed=seed, continuous=continuous)
    path = work / f"clv-summary-{customers}.npz"
    save_summary(summary, path)
    args = {"summary": str(path), "repeats": repeats, "_result_dir": str(work)}
    ours = run_job("clv_ours", args | {"predictions": str(work / "clv-ours.npz")}, log=log)
    theirs = run_job("fit", args | {"predictions": str(work / "clv-lifetimes.npz")}, log=log,
                     python=lifetimes_python, module="bench.lifetimes_worker")
    result = compare(ours, theirs, str(work / "clv-ours.npz"), str(work / "clv-lifetimes.npz"), summary)
    return result | {"peak_rss_mb_ours": _peak(ours), "peak_rss_mb_lifetimes": _peak(theirs)}


def _peak(result: dict) -> float:
    return max(p["peak_rss_mb"] for k, p in result["phases"].items() if k != "setup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2005)
    parser.add_argument("--continuous", action="store_true", help="keep exact purchase times")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (best counts)")
    parser.add_argument("--lifetimes-python", required=True, help="interpreter of a virtualenv with lifetimes 0.11.3")
    parser.add_argument("--work", type=Path, default=Path("var/bench/clv"))
    args = parser.parse_args()
    result = run(args.customers, args.lifetimes_python, args.work.resolve(), seed=args.seed, repeats=args.repeats,
                 continuous=args.continuous, log=args.work.resolve() / "clv.log")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
