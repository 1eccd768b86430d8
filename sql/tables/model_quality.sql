-- One row per CLV model fit per as-of date: the scoring fit and the calibration fit with its holdout check.
CREATE TABLE IF NOT EXISTS model_quality (
    as_of_date DATE NOT NULL, -- Date the scores are for: events up to the end of this day (UTC) count, nothing later
    model VARCHAR NOT NULL, -- 'bgnbd' (BG/NBD purchase and dropout model) or 'gamma_gamma' (spend per purchase)
    fit_role VARCHAR NOT NULL, -- 'scoring' (the fit behind the customer scores) or 'calibration' (refit up to observation_end, checked on the holdout)
    status VARCHAR NOT NULL, -- Fit outcome: 'ok', 'insufficient_data: <reason>' or 'failed: <reason>' (including a fit that did not converge)
    parameters VARCHAR, -- Fitted parameters as JSON: r, alpha, a, b (BG/NBD) or p, q, v (Gamma-Gamma), null without a fit
    log_likelihood DOUBLE PRECISION, -- Log-likelihood at the fitted parameters
    converged BOOLEAN, -- True when the optimiser converged
    iterations BIGINT, -- Optimiser iterations
    message VARCHAR, -- The optimiser's message
    n_customers BIGINT, -- Customers the fit used (Gamma-Gamma: repeat buyers with positive spend only)
    observation_end DATE NOT NULL, -- Last day of history the fit saw: the as-of date (inline scoring fits), the fit date (stored fits), or as-of minus the holdout for calibration fits
    holdout_periods DOUBLE PRECISION, -- Holdout length in model periods (weeks by default), null on scoring rows
    holdout_measure VARCHAR, -- 'repeat_purchases' (bgnbd) or 'revenue' (gamma_gamma) on calibration rows, null on scoring rows
    holdout_customers BIGINT, -- Customers forecast in the holdout check (revenue: those with a finite expected spend)
    holdout_actual DOUBLE PRECISION, -- Actual holdout total: repeat purchase days, or revenue in the base currency
    holdout_predicted DOUBLE PRECISION, -- Forecast holdout total, conditional on each customer's history
    holdout_predicted_unconditional DOUBLE PRECISION, -- BG/NBD tracking forecast that ignores individual histories (repeat_purchases rows only)
    aggregate_relative_error DOUBLE PRECISION, -- holdout_predicted / holdout_actual - 1
    aggregate_relative_error_unconditional DOUBLE PRECISION, -- holdout_predicted_unconditional / holdout_actual - 1
    mae_per_customer DOUBLE PRECISION, -- Mean absolute error of the per-customer forecast
    top_decile_lift DOUBLE PRECISION, -- Mean actual of the top predicted decile / overall mean actual (on revenue rows: the CLV decile lift)
    decile_means VARCHAR, -- JSON {"predicted": [10 means], "actual": [10 means]}, decile 1 = highest predictions
    check_status VARCHAR, -- 'ok', or why the holdout check could not be made, null on scoring rows
    fit_source VARCHAR, -- Where the fit behind the row comes from: 'inline' (fitted by this run) or 'model_fit' (the stored crm_model_refit fit of date observation_end)
    PRIMARY KEY (as_of_date, model, fit_role)
)
