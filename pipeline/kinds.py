"""Source kinds, importable without pulling in Polars (DAG files parse this on every scheduler loop)."""
KINDS = ("customers", "orders", "surveys", "complaints")  # customers first: the others are checked against them
