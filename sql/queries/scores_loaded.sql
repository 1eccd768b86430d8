-- Whether a crm_daily run for :as_of has committed its load (etl_run is written in that transaction).
SELECT count(*) FROM etl_run WHERE run_date = :as_of
