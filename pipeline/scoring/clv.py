"""Probabilistic customer-value models fitted by maximum likelihood.

* BG/NBD (Fader, Hardie & Lee 2005) for repeat-purchase counts and P(alive),
* Gamma-Gamma (Fader & Hardie 2013) for the value of a repeat purchase,
* their combination as a discounted CLV,
* shifted-beta-geometric (Fader & Hardie 2007) for contractual retention,
* holdout and lift checks whose results are stored as model-quality rows.

Formulas and sources are in docs/metrics-clv.md. Every fit maximises the
log-likelihood over log-parameters (so parameters stay positive) with a
trust-region Newton method fed analytic gradients and Hessians, from several
starting points, keeping the best.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import betaln, digamma, gammaln, hyp2f1, polygamma

__all__ = [
    "BGNBDFit",
    "GammaGammaFit",
    "InsufficientDataError",
    "SBGFit",
    "bgnbd_log_likelihood",
    "clv_decile_lift",
    "compress_rows",
    "discounted_clv",
    "expected_average_value",
    "expected_purchases",
    "expected_purchases_new",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_sbg",
    "gamma_gamma_log_likelihood",
    "holdout_check",
    "p_alive",
    "rfm_summary",
    "sbg_survival",
]


class InsufficientDataError(ValueError):
    """The data cannot identify the model; `reason` says what is missing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------
# RFM summary
# --------------------------------------------------------------------------


def rfm_summary(
    transactions: pl.DataFrame | pl.LazyFrame,
    *,
    customer_col: str,
    at_col: str,
    amount_col: str,
    observation_end: dt.date | dt.datetime,
    period_days: float = 1.0,
    one_row_per_day: bool = False,
) -> pl.DataFrame:
    """Per-customer frequency, recency, T and monetary_value.

    Works at day granularity: purchases of one customer on one calendar day
    are merged into one purchase whose value is their sum (the BG/NBD counts
    purchase occasions), and a datetime `observation_end` is truncated to
    its day. `at_col` must be a Date or Datetime column. Times are in units
    of `period_days` (7 for weeks):

    * frequency: purchase days after the first one (repeat purchases),
    * recency: first to last purchase day (0 without repeat purchases),
    * T: first purchase day to `observation_end`,
    * monetary_value: mean value of the repeat purchase days (the first
      purchase is left out, as the Gamma-Gamma model expects), 0 if none.

    Customers whose first purchase is after `observation_end` get no row.
    `one_row_per_day`: the transactions are already one row per customer
    and day (their day totals), so they are not merged again.
    """
    if period_days <= 0:
        raise ValueError(f"period_days must be positive, got {period_days}")
    end_day = observation_end.date() if isinstance(observation_end, dt.datetime) else observation_end

    daily = (
        transactions.lazy()
        .select(
            pl.col(customer_col),
            pl.col(at_col).cast(pl.Date).alias("_day"),
            pl.col(amount_col).cast(pl.Float64).alias("_amount"),
        )
        .filter(pl.col("_day") <= end_day)
    )
    if not one_row_per_day:
        daily = daily.group_by(customer_col, "_day").agg(pl.col("_amount").sum())
    first_day = pl.col("_day").min()
    return (
        daily.group_by(customer_col)
        .agg(
            (pl.len() - 1).cast(pl.Int64).alias("frequency"),
            ((pl.col("_day").max() - first_day).dt.total_days() / period_days).alias("recency"),
            ((pl.lit(end_day) - first_day).dt.total_days() / period_days).alias("T"),
            pl.col("_amount").filter(pl.col("_day") > first_day).mean().fill_null(0.0).alias("monetary_value"),
        )
        .sort(customer_col)
        .collect()
    )


# --------------------------------------------------------------------------
# Shared optimisation machinery
# --------------------------------------------------------------------------

# An objective maps natural parameters to (f, gradient, Hessian) of the
# per-customer negative log-likelihood (per-customer so tolerances do not
# depend on the sample size).
_Objective = Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]


@dataclass(frozen=True, slots=True)
class _Optimum:
    params: np.ndarray
    converged: bool
    iterations: int
    message: str
    starts_tried: int


class _LogSpaceObjective:
    """Objective in log-parameters, evaluated once per point.

    trust-exact asks for fun, jac and hess separately at the same point; all
    three come out of one pass over the data, so the last pass is kept.
    """

    def __init__(self, objective: _Objective) -> None:
        self._objective = objective
        self._cache: tuple[np.ndarray, tuple[float, np.ndarray, np.ndarray]] | None = None

    def _evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        if self._cache is None or not np.array_equal(theta, self._cache[0]):
            # Chain rule for p = exp(theta). Where anything overflows, an
            # infinite value makes the trust region reject the step (its
            # derivatives must still be finite: it takes their norms first).
            with np.errstate(all="ignore"):
                params = np.exp(theta)
                f, g, h = self._objective(params)
                g_theta = g * params
                h_theta = h * np.outer(params, params) + np.diag(g_theta)
            if np.isfinite(f) and np.all(np.isfinite(g_theta)) and np.all(np.isfinite(h_theta)):
                result = (float(f), g_theta, h_theta)
            else:
                result = (np.inf, np.zeros_like(theta), np.zeros((len(theta), len(theta))))
            self._cache = (theta.copy(), result)
        return self._cache[1]

    def fun(self, theta: np.ndarray) -> float:
        return self._evaluate(theta)[0]

    def jac(self, theta: np.ndarray) -> np.ndarray:
        return self._evaluate(theta)[1]

    def hess(self, theta: np.ndarray) -> np.ndarray:
        return self._evaluate(theta)[2]


def _minimize_multistart(objective: _Objective, starts: Sequence[Sequence[float]], *, gtol: float = 1e-8) -> _Optimum:
    """Minimise from every start (natural parameters), keep the lowest value."""
    if len(starts) == 0:
        raise ValueError("at least one starting point is needed")
    results = []
    for start in starts:
        start = np.asarray(start, dtype=float)
        if np.any(start <= 0) or not np.all(np.isfinite(start)):
            raise ValueError(f"starting parameters must be positive and finite, got {start}")
        wrapped = _LogSpaceObjective(objective)
        result = minimize(
            wrapped.fun,
            np.log(start),
            jac=wrapped.jac,
            hess=wrapped.hess,
            method="trust-exact",
            options={"gtol": gtol, "maxiter": 200},
        )
        results.append(result)
    # Runs that reach the same optimum differ only by rounding in the last
    # digits of the value; among those prefer one that reports convergence.
    lowest = min(result.fun for result in results)
    tied = [result for result in results if result.fun <= lowest + 1e-10 * max(1.0, abs(lowest))]
    best = min(tied, key=lambda result: (not result.success, result.fun))
    return _Optimum(
        params=np.exp(best.x),
        converged=bool(best.success) and bool(np.isfinite(best.fun)),
        iterations=int(best.nit),
        message=str(best.message),
        starts_tried=len(starts),
    )


def _penalised(objective: _Objective, penalizer: float) -> _Objective:
    """Add penalizer * sum(params**2), lifetimes' L2 penalty."""
    if penalizer == 0:
        return objective

    def with_penalty(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, g, h = objective(params)
        return f + penalizer * params @ params, g + 2 * penalizer * params, h + 2 * penalizer * np.eye(len(params))

    return with_penalty


# --------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BGNBDFit:
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    iterations: int
    n_customers: int
    n_unique_rows: int
    starts_tried: int
    message: str
    elapsed_seconds: float


def _rfm_arrays(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated float arrays (x, t_x, T) of one customer per position."""
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    if not (x.ndim == t_x.ndim == age.ndim == 1 and len(x) == len(t_x) == len(age)):
        raise ValueError("frequency, recency and T must be 1-D arrays of one length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(age))):
        raise ValueError("frequency, recency and T must be finite")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must hold non-negative integers")
    if np.any(t_x < 0) or np.any(t_x > age):
        raise ValueError("recency must lie in [0, T]")
    if np.any(t_x[x == 0] != 0):
        raise ValueError("recency must be 0 where frequency is 0")
    return x, t_x, age


# Keys of distinct rows are built in int64; see _distinct_rows.
_INT64_KEY_LIMIT = 2**63


@dataclass(frozen=True, slots=True)
class _DistinctRows:
    """Distinct (x, t_x, T) rows and the number of customers in each.

    Rows with x = 0 (so t_x = 0) are kept apart by T alone. Repeat-buyer rows
    are codes into their distinct x, t_x and T values, so that functions of
    those values are computed once per value; they are sorted by (x, t_x, T).
    """

    zero_T: np.ndarray
    zero_counts: np.ndarray
    x_values: np.ndarray
    t_values: np.ndarray
    T_values: np.ndarray
    x_code: np.ndarray
    t_code: np.ndarray
    T_code: np.ndarray
    counts: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.zero_T) + len(self.counts)


def _distinct_rows(x: np.ndarray, t_x: np.ndarray, age: np.ndarray) -> _DistinctRows:
    """Group identical customers.

    np.unique(np.column_stack(...), axis=0) sorts a structured view (1.8 s
    on a million rows here). Instead each column of the repeat buyers is
    numbered by a 1-D unique and the three codes are packed into one int64
    key, lexicographic in (x, t_x, T), so one integer sort groups the rows.
    """
    zero = x == 0
    zero_T, zero_counts = np.unique(age[zero], return_counts=True)
    (x_values, x_code), (t_values, t_code), (T_values, T_code) = (
        np.unique(column[~zero], return_inverse=True) for column in (x, t_x, age)
    )
    n_t, n_T = len(t_values), len(T_values)
    pair = x_code * n_t + t_code
    # Renumber the (x, t_x) pairs when the packed key could overflow int64,
    # which takes hundreds of millions of repeat buyers on continuous times.
    renumbered = len(x_values) * n_t * n_T >= _INT64_KEY_LIMIT
    if renumbered:
        pair_values, pair = np.unique(pair, return_inverse=True)
    keys, counts = np.unique(pair * n_T + T_code, return_counts=True)
    pair, T_code = np.divmod(keys, n_T)
    x_code, t_code = np.divmod(pair_values[pair] if renumbered else pair, n_t)
    return _DistinctRows(
        zero_T, zero_counts.astype(float), x_values, t_values, T_values, x_code, t_code, T_code, counts.astype(float)
    )


def compress_rows(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, t_x, T) rows with the number of customers in each.

    Same rows, order and counts as np.unique(np.column_stack([x, t_x, T]),
    axis=0, return_counts=True), over ten times faster.
    """
    x, t_x, age = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    rows = _distinct_rows(x, t_x, age)
    zeros = np.zeros(len(rows.zero_T))
    return (
        np.concatenate([zeros, rows.x_values[rows.x_code]]),
        np.concatenate([zeros, rows.t_values[rows.t_code]]),
        np.concatenate([rows.zero_T, rows.T_values[rows.T_code]]),
        np.concatenate([rows.zero_counts, rows.counts]),
    )


# Rows per block of the repeat-buyer loop. Block temporaries stay in cache
# and reuse freed memory (whole-array temporaries of a million rows
# page-fault on every allocation), and vectors this short keep OpenBLAS dot
# products single-threaded: above 10 000 elements it hands them to threads,
# which costs ~100x more than the product itself on a busy 2-core machine.
_BLOCK_ROWS = 8_192


class _BGNBDObjective:
    """Per-customer BG/NBD negative log-likelihood on compressed rows.

    Per customer, with rx = r + x, L(y) = ln(alpha + y), u = L(T) - L(t_x),
    c_x = a / (b + x - 1) and A(x) the gamma-function terms:

        ll = A(x) - r L(T)                                   if x = 0
        ll = A(x) - rx L(t_x) + ln(exp(-rx u) + c_x)         if x > 0

    exp(-rx u) lies in [0, 1] because t_x <= T, so nothing overflows however
    large x is. For repeat buyers ll = A(x) - rx L(t_x) + ln c_x
    + softplus(eta) with eta = -rx u - ln c_x, whose sigmoid pi is P(alive);
    so gradient = d(rest) + pi d(eta) and Hessian = d2(rest) + pi d2(eta)
    + pi (1 - pi) d(eta) d(eta)', the last a weighted Gram matrix.

    A(x) is summed over distinct frequencies; L and 1/(alpha + y) are taken
    over distinct t_x and T and gathered, as transaction logs put them on a
    daily grid with few values.
    """

    def __init__(self, rows: _DistinctRows) -> None:
        self.rows = rows
        self.n = rows.zero_counts.sum() + rows.counts.sum()
        # Customers per distinct frequency, 0 included.
        self.x_values = np.concatenate([[0.0], rows.x_values])
        self.x_weights = np.concatenate([[rows.zero_counts.sum()], np.bincount(rows.x_code, weights=rows.counts)])

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        ll, g, h = self._frequency_terms(params)
        r, alpha = params[:2]

        # Customers without repeat purchases: -r ln(alpha + T).
        rows = self.rows
        w0 = rows.zero_counts
        log_T0, inv_T0 = np.log(alpha + rows.zero_T), 1.0 / (alpha + rows.zero_T)
        ll -= r * (w0 @ log_T0)
        g[:2] -= [w0 @ log_T0, r * (w0 @ inv_T0)]
        h[:2, :2] += [[0.0, -(w0 @ inv_T0)], [-(w0 @ inv_T0), r * (w0 @ inv_T0**2)]]

        shifted_t, shifted_T = alpha + rows.t_values, alpha + rows.T_values
        tables = (np.log(shifted_t), 1.0 / shifted_t, np.log(shifted_T), 1.0 / shifted_T, 1.0 / (params[3] + rows.x_values - 1))
        for start in range(0, len(rows.counts), _BLOCK_ROWS):
            block_ll, block_g, block_h = self._repeat_buyer_terms(params, tables, slice(start, start + _BLOCK_ROWS))
            ll, g, h = ll + block_ll, g + block_g, h + block_h
        return -ll / self.n, -g / self.n, -h / self.n

    def _frequency_terms(self, params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """A(x) = lnG(r+x) - lnG(r) + r ln alpha + lnB(a, b+x) - lnB(a, b), over distinct x."""
        r, alpha, a, b = params
        xv, nx, n = self.x_values, self.x_weights, self.n
        ll = nx @ (
            gammaln(r + xv) - gammaln(r) + gammaln(a + b) + gammaln(b + xv) - gammaln(b) - gammaln(a + b + xv)
        ) + n * r * np.log(alpha)
        d_ab = nx @ (digamma(a + b) - digamma(a + b + xv))
        g = np.array([
            nx @ (digamma(r + xv) - digamma(r)) + n * np.log(alpha),
            n * r / alpha,
            d_ab,
            d_ab + nx @ (digamma(b + xv) - digamma(b)),
        ])
        t_ab = nx @ (polygamma(1, a + b) - polygamma(1, a + b + xv))
        h = np.zeros((4, 4))
        h[0, 0] = nx @ (polygamma(1, r + xv) - polygamma(1, r))
        h[0, 1] = h[1, 0] = n / alpha
        h[1, 1] = -n * r / alpha**2
        h[2:, 2:] = t_ab
        h[3, 3] += nx @ (polygamma(1, b + xv) - polygamma(1, b))
        return ll, g, h

    def _repeat_buyer_terms(
        self, params: np.ndarray, tables: tuple[np.ndarray, ...], rows: slice
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """ll - A(x), its gradient and Hessian summed over a block of repeat-buyer rows."""
        r, _, a, _ = params
        log_t_tab, inv_t_tab, log_T_tab, inv_T_tab, inv_bx_tab = tables
        x_code, t_code, T_code = self.rows.x_code[rows], self.rows.t_code[rows], self.rows.T_code[rows]
        w, rx = self.rows.counts[rows], r + self.rows.x_values[x_code]
        log_t, inv_t, inv_T, inv_bx = log_t_tab[t_code], inv_t_tab[t_code], inv_T_tab[T_code], inv_bx_tab[x_code]

        u = log_T_tab[T_code] - log_t
        v = inv_T - inv_t  # du/d(alpha)
        rxv = rx * v  # -d(eta)/d(alpha)
        q = np.exp(-rx * u)
        c = a * inv_bx
        s = q + c
        wpi = w * (q / s)
        wkappa = wpi * (c / s)
        wrx = w * rx

        ll = w @ np.log(s) - wrx @ log_t
        w_sum, wpi_sum = w.sum(), wpi.sum()
        # d(eta) = sign * (u, rx v, 1, 1/(b+x-1)); the sums are spelled out
        # because stacking a basis matrix costs more copies than it saves.
        sign = np.array([-1.0, -1.0, -1.0 / a, 1.0])
        g = np.array([-(w @ log_t), -(wrx @ inv_t), w_sum / a, -(w @ inv_bx)])
        g += sign * [wpi @ u, wpi @ rxv, wpi_sum, wpi @ inv_bx]
        wk_u, wk_rxv, wk_bx = wkappa * u, wkappa * rxv, wkappa * inv_bx
        gram = np.array([
            [wk_u @ u, wk_u @ rxv, wk_u.sum(), wk_u @ inv_bx],
            [wk_u @ rxv, wk_rxv @ rxv, wk_rxv.sum(), wk_rxv @ inv_bx],
            [wk_u.sum(), wk_rxv.sum(), wkappa.sum(), wk_bx.sum()],
            [wk_u @ inv_bx, wk_rxv @ inv_bx, wk_bx.sum(), wk_bx @ inv_bx],
        ])
        h = np.outer(sign, sign) * gram
        h_ralpha = -(w @ inv_t) - wpi @ v
        h[0, 1] += h_ralpha
        h[1, 0] += h_ralpha
        h[1, 1] += wrx @ inv_t**2 + wpi @ (rxv * (inv_t + inv_T))
        h[2, 2] -= (w_sum - wpi_sum) / a**2
        h[3, 3] += (w - wpi) @ inv_bx**2
        return ll, g, h


def bgnbd_log_likelihood(
    params: Sequence[float],
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None = None,
) -> float:
    """Total BG/NBD log-likelihood of (r, alpha, a, b), row by row.

    The textbook form ln A1 + ln A2 + logsumexp(ln A3, ln A4) of Fader,
    Hardie & Lee's note 004; the fit uses the compressed, rearranged
    `_BGNBDObjective`, and tests check they agree.
    """
    r, alpha, a, b = params
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + age)
    with np.errstate(divide="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * np.log(alpha + t_x), -np.inf)
    return float(w @ (a1 + a2 + np.logaddexp(a3, a4)))


def _default_bgnbd_starts(x: np.ndarray, age: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Starts spread over the usual range, alpha scaled to the time unit.

    Purchases per period are r / alpha among active customers, so alpha is
    set from the observed repeat rate and the start stays unit-free.
    """
    periods_per_purchase = age.sum() / max(x.sum(), 1.0)
    return [
        (1.0, periods_per_purchase, 1.0, 1.0),
        (0.25, 0.25 * periods_per_purchase, 0.5, 2.0),
        (3.0, 3.0 * periods_per_purchase, 3.0, 10.0),
    ]


def fit_bgnbd(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    penalizer: float = 0.0,
    starts: Sequence[Sequence[float]] | None = None,
    min_customers: int = 30,
) -> BGNBDFit:
    """Maximum-likelihood BG/NBD fit.

    `starts` are (r, alpha, a, b) tuples; `penalizer` adds
    penalizer * (r² + alpha² + a² + b²) to the per-customer negative
    log-likelihood as lifetimes does (lifetimes penalises its internally
    rescaled alpha, so penalised fits differ). `log_likelihood` is the
    unpenalised total.
    """
    started = time.perf_counter()
    x, t_x, age = _rfm_arrays(frequency, recency, T)
    if len(x) < min_customers:
        raise InsufficientDataError(f"BG/NBD needs at least {min_customers} customers, got {len(x)}")
    if not np.any(x > 0):
        raise InsufficientDataError("BG/NBD needs at least one repeat buyer to identify a and b")

    objective = _BGNBDObjective(_distinct_rows(x, t_x, age))
    optimum = _minimize_multistart(
        _penalised(objective, penalizer),
        _default_bgnbd_starts(x, age) if starts is None else starts,
    )
    r, alpha, a, b = optimum.params
    return BGNBDFit(
        r=float(r),
        alpha=float(alpha),
        a=float(a),
        b=float(b),
        log_likelihood=float(-objective(optimum.params)[0] * objective.n),
        converged=optimum.converged,
        iterations=optimum.iterations,
        n_customers=len(x),
        n_unique_rows=objective.rows.n_rows,
        starts_tried=optimum.starts_tried,
        message=optimum.message,
        elapsed_seconds=time.perf_counter() - started,
    )


def p_alive(fit: BGNBDFit, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """P(customer still active | x, t_x, T); 1 for customers without repeats.

    1 / (1 + a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x)) written as
    q / (q + c) with q = ((alpha+t_x)/(alpha+T))^(r+x) in [0, 1], which
    cannot overflow.
    """
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    q = np.exp((fit.r + x) * (np.log(fit.alpha + t_x) - np.log(fit.alpha + T)))
    c = fit.a / (fit.b + np.maximum(x, 1) - 1)
    return np.where(x > 0, q / (q + c), 1.0)


def _purchases_if_alive(fit: BGNBDFit, t: np.ndarray, x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """E[purchases in (T, T+t] | x, alive at T] (FHL 2005 eq. 10 × 1/P(alive)).

    (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x)
    * 2F1(r+x, b+x; a+b+x-1; z)], z = t/(alpha+T+t). Euler's transformation
    2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the bracket
    into 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z): no power of (r+x)
    and a series that tends to 1 as x grows, so large x cannot overflow.
    """
    if np.any(t < 0):
        raise ValueError("prediction horizon t must be non-negative")
    r, alpha, b = fit.r, fit.alpha, fit.b
    # The prefactor is 0/0 at a = 1; moving a by 1e-7 changes the result by
    # a relative ~1e-7, far below the model's own uncertainty. The bracket
    # cancels to O(z), so its rounding error is ~1e-16 c / |a - 1| (at most
    # ~1e-8 c) and can make a near-zero result negative: clipped below.
    a = fit.a if abs(fit.a - 1) > 1e-7 else 1 + np.copysign(1e-7, fit.a - 1)
    z = t / (alpha + T + t)  # in [0, 1): the series converges
    c = a + b + x - 1
    hyp = hyp2f1(a + b - 1 - r, a - 1, c, z)
    if not np.all(np.isfinite(hyp)):
        # scipy returns NaN at the pole c = 0 (x = 0, a + b = 1), cancelled
        # by the prefactor c, and for z > 0.9 when c - (a+b-1-r) - (a-1) is
        # a large integer (its connection formula is then singular although
        # the function is not). The result is smooth in c, so shifting c by
        # 1e-12 changes it by ~1e-12.
        c = np.where(np.isfinite(hyp), c, c + 1e-12 * np.maximum(1, np.abs(c)))
        hyp = hyp2f1(a + b - 1 - r, a - 1, c, z)
    result = c / (a - 1) * (1 - (1 - z) ** (a - 1) * hyp)
    if not np.all(np.isfinite(result)):
        raise FloatingPointError(f"2F1 could not be evaluated for r={r}, alpha={alpha}, a={fit.a}, b={b}")
    return np.maximum(result, 0.0)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and each value's index among them (faster than np.unique's inverse)."""
    distinct = np.unique(values)
    return distinct, np.searchsorted(distinct, values)


def _distinct_pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (x, T) pairs and each customer's pair index.

    A transaction log puts x and T on a daily grid, so a million customers share a few thousand
    pairs: 2F1 (about 0.4 us a value) is then evaluated per pair, not per customer.
    """
    (x_values, x_code), (T_values, T_code) = (_codes(c.ravel()) for c in (x, T))
    key = x_code.astype(np.int64) * len(T_values) + T_code
    if len(x_values) * len(T_values) <= 4 * key.size:  # a dense key range: number the pairs without a sort
        used = np.bincount(key, minlength=len(x_values) * len(T_values)) > 0
        pairs, inverse = np.flatnonzero(used), (np.cumsum(used) - 1)[key]
    else:
        pairs, inverse = np.unique(key, return_inverse=True)
    return x_values[pairs // len(T_values)], T_values[pairs % len(T_values)], inverse.reshape(x.shape)


def _purchases_if_alive_at(fit: BGNBDFit, t: float, pairs: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """_purchases_if_alive for one horizon t, per customer, through the distinct (x, T) pairs."""
    x_values, T_values, inverse = pairs
    return _purchases_if_alive(fit, np.full(len(x_values), float(t)), x_values, T_values)[inverse]


def expected_purchases(fit: BGNBDFit, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Expected repeat purchases in the next t periods given (x, t_x, T)."""
    t, x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (t, x, t_x, T)))
    if t.size and np.all(t == t.flat[0]):  # one horizon for everyone: once per distinct (x, T)
        return _purchases_if_alive_at(fit, t.flat[0], _distinct_pairs(x, T)) * p_alive(fit, x, t_x, T)
    return _purchases_if_alive(fit, t, x, T) * p_alive(fit, x, t_x, T)


def expected_purchases_new(fit: BGNBDFit, t: ArrayLike) -> np.ndarray:
    """Expected repeat purchases in the first t periods after a first purchase.

    FHL 2005 eq. 9; it is the conditional expectation at x = t_x = T = 0.
    """
    t = np.asarray(t, dtype=float)
    return _purchases_if_alive(fit, t, np.zeros_like(t), np.zeros_like(t))


# --------------------------------------------------------------------------
# Gamma-Gamma
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GammaGammaFit:
    p: float
    q: float
    v: float
    log_likelihood: float
    converged: bool
    iterations: int
    n_customers: int
    message: str
    elapsed_seconds: float


def _repeat_buyers(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """(x, mean spend) of customers with x > 0; their spend must be positive."""
    x, m = np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
    if x.shape != m.shape or x.ndim != 1:
        raise ValueError("frequency and monetary_value must be 1-D arrays of one length")
    repeat = x > 0
    if np.any(~np.isfinite(m[repeat])) or np.any(m[repeat] <= 0):
        raise ValueError("monetary_value must be positive and finite for customers with frequency > 0")
    return x[repeat], m[repeat]


def _gamma_gamma_rows(params: Sequence[float], x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Log-density of each customer's mean spend m over x repeat purchases."""
    p, q, v = params
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q)
        + q * np.log(v) + (px - 1) * np.log(m) + px * np.log(x) - (px + q) * np.log(x * m + v)
    )


def gamma_gamma_log_likelihood(params: Sequence[float], frequency: ArrayLike, monetary_value: ArrayLike) -> float:
    """Total Gamma-Gamma log-likelihood of (p, q, v) over the repeat buyers."""
    return float(_gamma_gamma_rows(params, *_repeat_buyers(frequency, monetary_value)).sum())


def _gamma_gamma_objective(x: np.ndarray, m: np.ndarray) -> _Objective:
    """Per-customer Gamma-Gamma negative log-likelihood.

    The gamma-function terms depend on x alone, which takes few distinct values, so they are
    computed once per distinct x and weighted by its count (polygamma is ~20x slower than a log);
    only ln(x m + v) and 1/(x m + v) are evaluated per customer.
    """
    n = len(x)
    xv, x_code = np.unique(x, return_inverse=True)
    nx = np.bincount(x_code).astype(float)
    xm = x * m
    log_m = np.log(m)
    # Constant parts of sum((p x - 1) ln m + p x ln x).
    sum_x_log_mx, sum_log_m = float(np.sum(x * (log_m + np.log(x)))), float(np.sum(log_m))

    def objective(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        p, q, v = params
        pxv = p * xv
        log_xmv = np.log(xm + v)
        inv = 1.0 / (xm + v)
        x_log, x_inv = float(np.sum(x * log_xmv)), float(np.sum(x * inv))
        sum_log, sum_inv = float(np.sum(log_xmv)), float(np.sum(inv))
        sum_w_inv = p * x_inv + q * sum_inv  # sum((p x + q) / (x m + v))
        psi_all, tri_all = digamma(pxv + q), polygamma(1, pxv + q)
        ll = (
            nx @ (gammaln(pxv + q) - gammaln(pxv)) - n * gammaln(q) + n * q * np.log(v)
            + p * sum_x_log_mx - sum_log_m - p * x_log - q * sum_log
        )
        g = np.array([
            (nx * xv) @ (psi_all - digamma(pxv)) + sum_x_log_mx - x_log,
            nx @ psi_all - n * digamma(q) + n * np.log(v) - sum_log,
            n * q / v - sum_w_inv,
        ])
        h_pq = (nx * xv) @ tri_all
        h_vv = -n * q / v**2 + p * float(np.sum(x * inv**2)) + q * float(np.sum(inv**2))
        h = np.array([
            [(nx * xv**2) @ (tri_all - polygamma(1, pxv)), h_pq, -x_inv],
            [h_pq, nx @ tri_all - n * polygamma(1, q), n / v - sum_inv],
            [-x_inv, n / v - sum_inv, h_vv],
        ])
        return -ll / n, -g / n, -h / n

    return objective


def fit_gamma_gamma(
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    starts: Sequence[Sequence[float]] | None = None,
    min_repeat_buyers: int = 30,
) -> GammaGammaFit:
    """Maximum-likelihood Gamma-Gamma fit on the repeat buyers (frequency > 0).

    `monetary_value` is each customer's mean repeat-purchase value, as
    produced by rfm_summary; customers without repeats are ignored.
    """
    started = time.perf_counter()
    x, m = _repeat_buyers(frequency, monetary_value)
    if len(x) < min_repeat_buyers:
        raise InsufficientDataError(f"Gamma-Gamma needs at least {min_repeat_buyers} repeat buyers, got {len(x)}")

    # E[spend] = p v / (q - 1): each default start matches the sample mean.
    mean_spend = float(m.mean())
    default_starts = [(1.0, 2.0, mean_spend), (5.0, 3.0, 0.4 * mean_spend), (0.5, 5.0, 8.0 * mean_spend)]
    optimum = _minimize_multistart(_gamma_gamma_objective(x, m), default_starts if starts is None else starts)
    p, q, v = optimum.params
    return GammaGammaFit(
        p=float(p),
        q=float(q),
        v=float(v),
        log_likelihood=float(_gamma_gamma_rows(optimum.params, x, m).sum()),
        converged=optimum.converged,
        iterations=optimum.iterations,
        n_customers=len(x),
        message=optimum.message,
        elapsed_seconds=time.perf_counter() - started,
    )


def expected_average_value(fit: GammaGammaFit, frequency: ArrayLike, monetary_value: ArrayLike) -> np.ndarray:
    """E[value of a future purchase | x, mean spend m] = p(v + x m)/(p x + q - 1).

    A weighted mean of the population mean p v/(q-1) and the customer's own
    m; customers without repeats get the population mean.
    """
    x, m = np.broadcast_arrays(np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float))
    denominator = fit.p * x + fit.q - 1
    if np.any(denominator <= 0):
        raise ValueError(f"expected spend is infinite when p x + q <= 1 (p={fit.p}, q={fit.q})")
    return fit.p * (fit.v + x * m) / denominator


# --------------------------------------------------------------------------
# Discounted CLV
# --------------------------------------------------------------------------


def discounted_clv(
    bgnbd: BGNBDFit,
    gg: GammaGammaFit,
    x: ArrayLike,
    t_x: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    *,
    horizon_periods: float,
    discount_rate_per_period: float,
    margin: float = 1.0,
    step: float = 1,
) -> np.ndarray:
    """Discounted expected margin over the next `horizon_periods`.

    sum_k [E(t_k) - E(t_{k-1})] * E[value] * margin / (1 + d)^t_k with
    t_k = k * step, as lifetimes' customer_lifetime_value. lifetimes
    discounts per step (its `discount_rate` is monthly with a step of one
    month); the same result comes from d = (1 + monthly)^(1/step) - 1.
    """
    n_steps = horizon_periods / step
    if step <= 0 or n_steps < 1 or not np.isclose(n_steps, round(n_steps)):
        raise ValueError("horizon_periods must be a positive multiple of step")
    if discount_rate_per_period <= -1:
        raise ValueError("discount_rate_per_period must exceed -1")
    value = expected_average_value(gg, x, monetary_value) * margin

    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (x, t_x, T)))
    # E(t) = P(alive) * purchases-if-alive(t, x, T): the discounted sum is taken per distinct (x, T)
    # pair and P(alive) applied once per customer.
    pairs = _distinct_pairs(x, T)
    if_alive = np.zeros(len(pairs[0]))
    previous = np.zeros(len(pairs[0]))
    for k in range(1, round(n_steps) + 1):
        cumulative = _purchases_if_alive(bgnbd, np.full(len(pairs[0]), k * step), pairs[0], pairs[1])
        if_alive += (cumulative - previous) / (1 + discount_rate_per_period) ** (k * step)
        previous = cumulative
    return if_alive[pairs[2]] * p_alive(bgnbd, x, t_x, T) * value


# --------------------------------------------------------------------------
# Shifted beta-geometric (contractual retention)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SBGFit:
    alpha: float
    beta: float
    log_likelihood: float
    converged: bool
    iterations: int
    n_periods: int
    cohort_size: float
    message: str
    elapsed_seconds: float


def _sbg_objective(lost: np.ndarray, survivors: float) -> _Objective:
    """Negative log-likelihood per cohort member of churn times 1..n.

    P(T=t) = B(alpha+1, beta+t-1) / B(alpha, beta), so with G = ln Gamma
    ln P(T=t) = ln alpha + G(beta+t-1) - G(alpha+beta+t) - G(beta) + G(alpha+beta)
    ln S(n)   = G(beta+n) - G(alpha+beta+n) - G(beta) + G(alpha+beta).
    """
    t = np.arange(1, len(lost) + 1, dtype=float)
    n = len(lost)
    size = lost.sum() + survivors

    def objective(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        alpha, beta = params
        ab = alpha + beta
        log_p = np.log(alpha) + gammaln(beta + t - 1) - gammaln(ab + t) - gammaln(beta) + gammaln(ab)
        log_s = gammaln(beta + n) - gammaln(ab + n) - gammaln(beta) + gammaln(ab)
        ll = lost @ log_p + survivors * log_s

        d_common_p = digamma(ab) - digamma(ab + t)  # d/d(alpha) of the shared terms
        d_common_s = digamma(ab) - digamma(ab + n)
        g = np.array([
            lost @ (1 / alpha + d_common_p) + survivors * d_common_s,
            lost @ (d_common_p + digamma(beta + t - 1) - digamma(beta)) + survivors * (
                d_common_s + digamma(beta + n) - digamma(beta)
            ),
        ])
        t_common = lost @ (polygamma(1, ab) - polygamma(1, ab + t)) + survivors * (
            polygamma(1, ab) - polygamma(1, ab + n)
        )
        h = np.array([
            [t_common - lost.sum() / alpha**2, t_common],
            [t_common, t_common + lost @ (polygamma(1, beta + t - 1) - polygamma(1, beta))
             + survivors * (polygamma(1, beta + n) - polygamma(1, beta))],
        ])
        return -ll / size, -g / size, -h / size

    return objective


def fit_sbg(
    retention: Sequence[float],
    *,
    cohort_size: float = 1000,
    starts: Sequence[Sequence[float]] | None = None,
) -> SBGFit:
    """Fit the shifted-beta-geometric model to a survival curve.

    `retention[t-1]` is the share of the original cohort still active after
    period t (Fader & Hardie 2007's "% still active", not period-on-period
    rates), for t = 1..n. As in their paper, counts are the curve times a
    cohort of `cohort_size` (1000): cohort * (S(t-1) - S(t)) churned in
    period t and cohort * S(n) still active.
    """
    started = time.perf_counter()
    survival = np.asarray(retention, dtype=float)
    if survival.ndim != 1 or len(survival) < 2:
        raise InsufficientDataError("sBG needs a survival curve of at least two periods")
    if np.any(survival <= 0) or np.any(survival > 1) or np.any(np.diff(survival) > 0):
        raise ValueError("retention must be a non-increasing survival curve in (0, 1]")

    alive = cohort_size * np.concatenate([[1.0], survival])
    lost = -np.diff(alive)
    objective = _sbg_objective(lost, alive[-1])
    optimum = _minimize_multistart(objective, [(1.0, 1.0), (0.5, 3.0), (3.0, 0.5)] if starts is None else starts)
    alpha, beta = optimum.params
    return SBGFit(
        alpha=float(alpha),
        beta=float(beta),
        log_likelihood=float(-objective(optimum.params)[0] * cohort_size),
        converged=optimum.converged,
        iterations=optimum.iterations,
        n_periods=len(survival),
        cohort_size=float(cohort_size),
        message=optimum.message,
        elapsed_seconds=time.perf_counter() - started,
    )


def sbg_survival(fit: SBGFit, periods: ArrayLike) -> np.ndarray:
    """S(t) = B(alpha, beta + t) / B(alpha, beta): share still active after t periods."""
    t = np.asarray(periods, dtype=float)
    if np.any(t < 0):
        raise ValueError("periods must be non-negative")
    return np.exp(betaln(fit.alpha, fit.beta + t) - betaln(fit.alpha, fit.beta))


# --------------------------------------------------------------------------
# Model quality
# --------------------------------------------------------------------------


def holdout_check(
    fit: BGNBDFit,
    cal_summary: pl.DataFrame,
    holdout_frequency: ArrayLike,
    holdout_length: float,
) -> dict[str, float]:
    """Compare holdout repeat purchases with the model's forecasts.

    `cal_summary` has the calibration frequency, recency and T columns (as
    rfm_summary makes them) and `holdout_frequency` the repeat purchases of
    the same customers, in the same order, over the next `holdout_length`
    periods. Two forecasts: conditional on each history (per customer), and
    the unconditional tracking forecast E[X(T+L)] - E[X(T)] that FHL 2005
    use for the aggregate check.
    """
    x, t_x, T = (cal_summary[c].to_numpy().astype(float) for c in ("frequency", "recency", "T"))
    actual = np.asarray(holdout_frequency, dtype=float)
    if actual.shape != x.shape:
        raise ValueError("holdout_frequency must have one value per row of cal_summary")
    actual_total = float(actual.sum())
    if actual_total <= 0:
        raise InsufficientDataError("holdout check needs at least one holdout purchase")
    predicted = expected_purchases(fit, holdout_length, x, t_x, T)
    predicted_total = float(predicted.sum())
    unconditional_total = float(np.sum(expected_purchases_new(fit, T + holdout_length) - expected_purchases_new(fit, T)))
    return {
        "n_customers": float(len(actual)),
        "holdout_length": float(holdout_length),
        "actual_total": actual_total,
        "predicted_total": predicted_total,
        "aggregate_relative_error": predicted_total / actual_total - 1,
        "mae_per_customer": float(np.mean(np.abs(predicted - actual))),
        "predicted_total_unconditional": unconditional_total,
        "aggregate_relative_error_unconditional": unconditional_total / actual_total - 1,
    }


def clv_decile_lift(predicted: ArrayLike, actual: ArrayLike) -> dict[str, float]:
    """Top-decile lift and per-decile means, deciles ranked by prediction.

    Decile 1 holds the highest predictions; ties are broken by position so
    the split is deterministic. Lift = mean actual in decile 1 / overall
    mean actual.
    """
    predicted, actual = np.asarray(predicted, dtype=float), np.asarray(actual, dtype=float)
    if predicted.shape != actual.shape or predicted.ndim != 1:
        raise ValueError("predicted and actual must be 1-D arrays of one length")
    if len(actual) < 10:
        raise InsufficientDataError(f"decile lift needs at least 10 customers, got {len(actual)}")
    overall = float(actual.mean())
    if overall <= 0:
        raise InsufficientDataError("decile lift needs a positive mean actual value")

    deciles = np.array_split(np.argsort(-predicted, kind="stable"), 10)
    result = {"top_decile_lift": float(actual[deciles[0]].mean()) / overall, "overall_actual_mean": overall}
    for k, members in enumerate(deciles, start=1):
        result[f"decile_{k:02d}_predicted_mean"] = float(predicted[members].mean())
        result[f"decile_{k:02d}_actual_mean"] = float(actual[members].mean())
    return result
