"""The lifetimes 0.11.3 side of bench/clv_vs_lifetimes.py, run by the lifetimes virtualenv's interpreter:

    var/bench/lifetimes-venv/bin/python -m bench.lifetimes_worker fit '<json args>' RESULT_FILE

Imports only numpy, pandas, lifetimes and bench.measure (standard library), never the pipeline.
Fits and predicts as lifetimes' documentation shows, timed like our side (bench.worker job_clv_ours).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

from bench.measure import Meter

METER = Meter()
METER.begin("setup")  # imports, and any time between phases, count as setup, never as a measured phase
# Must match bench/clv_vs_lifetimes.py (that module imports the pipeline, so it is not imported here).
HORIZON, CLV_MONTHS, MONTHLY_DISCOUNT = 52.0, 12, 0.01


def fit(data: pd.DataFrame) -> tuple[BetaGeoFitter, GammaGammaFitter, float]:
    started = time.perf_counter()
    bgf = BetaGeoFitter().fit(data["frequency"], data["recency"], data["T"])
    bgnbd_seconds = time.perf_counter() - started
    repeat = data[data["frequency"] > 0]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    return bgf, ggf, bgnbd_seconds


def predict(bgf: BetaGeoFitter, ggf: GammaGammaFitter, data: pd.DataFrame) -> dict[str, np.ndarray]:
    x, t_x, T, m = data["frequency"], data["recency"], data["T"], data["monetary_value"]
    return {
        "p_alive": np.asarray(bgf.conditional_probability_alive(x, t_x, T)),
        "expected_purchases": np.asarray(bgf.conditional_expected_number_of_purchases_up_to_time(HORIZON, x, t_x, T)),
        "expected_average_value": np.asarray(ggf.conditional_expected_average_profit(x, m)),
        "clv": np.asarray(ggf.customer_lifetime_value(bgf, x, t_x, T, m, time=CLV_MONTHS,
                                                      discount_rate=MONTHLY_DISCOUNT, freq="W")),
    }


def job_fit(args: dict) -> dict:
    with np.load(args["summary"]) as npz:
        data = pd.DataFrame({k: npz[k] for k in npz.files})
    fit_seconds, bgnbd_seconds, predict_seconds = [], [], []
    for _ in range(args["repeats"]):
        started = time.perf_counter()
        with METER.phase("fit"):
            bgf, ggf, bgnbd = fit(data)
        fit_seconds.append(time.perf_counter() - started)
        bgnbd_seconds.append(bgnbd)
    for _ in range(args["repeats"]):
        started = time.perf_counter()
        with METER.phase("predict"):
            predicted = predict(bgf, ggf, data)
        predict_seconds.append(time.perf_counter() - started)
    np.savez(args["predictions"], **predicted)
    params = {**{k: float(bgf.params_[k]) for k in ("r", "alpha", "a", "b")},
              **{k: float(ggf.params_[k]) for k in ("p", "q", "v")}}
    return {"params": params, "fit_seconds": fit_seconds, "bgnbd_fit_seconds": bgnbd_seconds,
            "predict_seconds": predict_seconds, "rows": len(data)}


def main() -> None:
    job, args, result_file = sys.argv[1], json.loads(sys.argv[2]), Path(sys.argv[3])
    figures = {"fit": job_fit}[job](args)
    METER.end()
    result_file.write_text(json.dumps({**figures, "phases": METER.as_dict()}))


if __name__ == "__main__":
    main()
