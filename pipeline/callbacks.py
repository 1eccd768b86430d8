"""How every task of the crm DAGs fails: retries with exponential backoff, then a notification.

Bad input (pipeline/errors.py) raises AirflowFailException, which Airflow never retries: the task
fails at once and the callback below reports it. Anything else (a database restart, a full disk,
a network blip) is retried first, and only the last failure notifies.

Imported by the DAG files at parse time: nothing heavy at module level.
"""
from __future__ import annotations

import logging
from datetime import timedelta

log = logging.getLogger(__name__)

RETRIES = 2
RETRY_DELAY = timedelta(minutes=2)
# The backoff multiplier (Airflow 3; 0 = a constant delay): the n-th retry waits retry_delay * 2**(n-1),
# plus up to as much again of jitter: 2-4 min, then 4-8 min.
RETRY_BACKOFF = 2.0
MAX_RETRY_DELAY = timedelta(minutes=30)


def task_failed(context) -> None:
    """on_failure_callback: logs the failure and sends it through pipeline.notify. Never raises:
    Airflow would only log that too, and the task has failed either way."""
    subject, body, payload = failure_message(context)
    log.error("%s\n%s", subject, body)
    try:
        from pipeline.notify import notify

        notify(subject, body, payload)
    except Exception:  # noqa: BLE001 - a broken channel must not hide the failure being reported
        log.exception("FAILURE NOT DELIVERED: %s", subject)


def failure_message(context) -> tuple[str, str, dict]:
    """(subject, body, payload) describing the failed task instance in `context`."""
    ti = context["ti"]
    error = context.get("exception")
    cause = f"{type(error).__name__}: {error}" if error is not None else "unknown error (no exception in the context)"
    payload = {
        "event": "task_failed",
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "logical_date": _iso(context.get("logical_date")),
        "data_interval_start": _iso(context.get("data_interval_start")),
        "data_interval_end": _iso(context.get("data_interval_end")),
        "error_type": type(error).__name__ if error is not None else None,
        "error": str(error)[:4000] if error is not None else None,
        "log_url": _log_url(ti),
    }
    mapped = f"[{ti.map_index}]" if ti.map_index is not None and ti.map_index >= 0 else ""
    subject = f"crm: {ti.dag_id}.{ti.task_id}{mapped} failed ({ti.run_id})"
    body = (f"Task {ti.task_id}{mapped} of {ti.dag_id} failed on try {ti.try_number} of {ti.max_tries + 1}, "
            f"run {ti.run_id}.\n{cause[:4000]}\nLog: {payload['log_url']}")
    return subject, body, payload


def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _log_url(ti) -> str | None:
    try:
        return ti.log_url
    except Exception:  # noqa: BLE001 - a missing [api] base_url must not stop the report
        return None


DEFAULT_ARGS = {
    "retries": RETRIES,
    "retry_delay": RETRY_DELAY,
    "retry_exponential_backoff": RETRY_BACKOFF,
    "max_retry_delay": MAX_RETRY_DELAY,
    "on_failure_callback": task_failed,
}
