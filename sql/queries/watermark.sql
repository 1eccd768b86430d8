-- The last batch date loaded for a source: extraction resumes after it.
SELECT max(batch_date) FROM etl_batch WHERE source = :source
