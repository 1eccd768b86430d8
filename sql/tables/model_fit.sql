-- One row per CLV model per fit date: crm_model_refit's stored fit, which daily scoring on or after
-- that date uses instead of fitting inline (the latest fit date on or before the as-of date).
CREATE TABLE IF NOT EXISTS model_fit (
    fit_date DATE NOT NULL, -- Last day of history the fit saw: events up to the end of this day (UTC), nothing later
    model VARCHAR NOT NULL, -- 'bgnbd' (BG/NBD purchase and dropout model) or 'gamma_gamma' (spend per purchase)
    status VARCHAR NOT NULL, -- Fit outcome: 'ok', 'insufficient_data: <reason>' or 'failed: <reason>' (including a fit that did not converge); scoring uses only 'ok' fits
    parameters VARCHAR, -- Fitted parameters as JSON: r, alpha, a, b (BG/NBD) or p, q, v (Gamma-Gamma), null without a fit
    log_likelihood DOUBLE PRECISION, -- Log-likelihood at the fitted parameters
    converged BOOLEAN, -- True when the optimiser converged
    iterations BIGINT, -- Optimiser iterations
    message VARCHAR, -- The optimiser's message
    n_customers BIGINT, -- Customers the fit used (Gamma-Gamma: repeat buyers with positive spend only)
    period_days DOUBLE PRECISION NOT NULL, -- Days per model period the parameters are in (clv.period_days); scoring with another period fits inline
    penalizer DOUBLE PRECISION, -- BG/NBD L2 penalizer the fit used (clv.bgnbd_penalizer), null for gamma_gamma; scoring with another one fits inline
    PRIMARY KEY (fit_date, model)
)
