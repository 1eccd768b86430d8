-- The stored model fits of the latest fit date on or before :as_of: a score never uses a later fit.
SELECT fit_date, model, status, parameters, log_likelihood, converged, iterations, message, n_customers,
       period_days, penalizer
FROM model_fit
WHERE fit_date = (SELECT max(fit_date) FROM model_fit WHERE fit_date <= :as_of)
ORDER BY model
