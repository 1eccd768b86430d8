-- The batch dates a run date loaded before: its re-run reprocesses exactly these.
SELECT batch_date FROM etl_batch WHERE source = :source AND run_date = :run_date
