"""Errors no retry can fix (a wrong config, a broken export): tasks fail at once on them instead of
waiting out their retries, and the message reaches the run's log unchanged."""
from __future__ import annotations

import functools

from pipeline.extract import SourceReadError
from pipeline.mapping import SchemaDriftError
from pipeline.sources import SourceConfigError
from pipeline.stage import QuarantineThresholdError
from pipeline.validate import ContractError

BAD_INPUT = (SourceConfigError, SourceReadError, SchemaDriftError, ContractError, QuarantineThresholdError)


def fail_fast_on_bad_input(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except BAD_INPUT as exc:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc

    return wrapper
