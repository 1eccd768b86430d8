-- Run dates in [:start, :end] whose load committed (etl_run): crm backfill skips them unless told to reprocess.
SELECT run_date FROM etl_run WHERE run_date BETWEEN :start AND :end ORDER BY run_date
