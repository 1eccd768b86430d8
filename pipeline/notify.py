"""One way to tell people something happened: `notify(subject, body, payload)`.

Every message is logged; it also goes to each channel configured in the environment (credentials
come only from there, never from the repo):

| variable | channel |
|---|---|
| `CRM_ALERT_SMTP_URL` | e-mail via `smtp://host[:port]` (a login as the URL's user-info) (STARTTLS when the server offers it; `?starttls=false` to skip), or `smtps://` (TLS from the start) |
| `CRM_ALERT_EMAIL_FROM`, `CRM_ALERT_EMAIL_TO` | sender and comma-separated recipients; required with `CRM_ALERT_SMTP_URL` |
| `CRM_ALERT_WEBHOOK_URL` | HTTP POST of `{"subject", "text", "body", "payload"}` as JSON (`text` makes Slack/Teams-style incoming webhooks show it) |
| `CRM_ALERT_TIMEOUT_SECONDS` | per-channel network timeout, default 10 |

Every configured channel is tried even if an earlier one fails; then, if any failed, NotifyError
names each failure, so the caller's task fails (and retries) instead of an alert being lost quietly.
It is a NotifyConfigError when a channel is misconfigured, which no retry fixes.
"""
from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 10.0


class NotifyError(RuntimeError):
    """One or more configured channels could not deliver the message."""


class NotifyConfigError(NotifyError):
    """A channel is configured wrongly (e.g. an SMTP URL without recipients)."""


@dataclass(frozen=True)
class Channel:
    name: str  # for logs and errors; never contains credentials
    send: Callable[[str, str, Mapping], None]


def notify(subject: str, body: str, payload: Mapping | None = None) -> None:
    """Logs the message, then delivers it to every channel configured in the environment.

    `payload` is JSON-able detail (dates and other values are sent as their str()). Raises
    NotifyError after trying every channel if any of them failed.
    """
    payload = dict(payload or {})
    log.warning("NOTIFY %s\n%s", subject, body)
    failures, misconfigured = [], False
    for channel in channels_from_env(os.environ):
        try:
            channel.send(subject, body, payload)
            log.info("notification %r sent via %s", subject, channel.name)
        except Exception as exc:  # noqa: BLE001 - every channel gets its turn; all failures are raised below
            log.error("NOTIFY FAILED via %s: %s: %s", channel.name, type(exc).__name__, exc)
            failures.append(f"{channel.name}: {type(exc).__name__}: {exc}")
            misconfigured |= isinstance(exc, NotifyConfigError)
    if failures:
        # A configuration error is raised as such: retrying cannot fix it.
        error = NotifyConfigError if misconfigured else NotifyError
        raise error(f"notification {subject!r} failed on {len(failures)} channel(s): " + "; ".join(failures))


def channels_from_env(env: Mapping[str, str]) -> list[Channel]:
    """The channels the environment configures (the log is always on and is not listed)."""
    timeout = float(env.get("CRM_ALERT_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
    channels: list[Channel] = []
    builders = {"smtp": (env.get("CRM_ALERT_SMTP_URL"), lambda: _smtp_channel(env, timeout)),
                "webhook": (env.get("CRM_ALERT_WEBHOOK_URL"),
                            lambda: _webhook_channel(env["CRM_ALERT_WEBHOOK_URL"], timeout))}
    for name, (configured, build) in builders.items():
        if not configured:
            continue
        try:
            channels.append(build())
        except NotifyConfigError as exc:
            channels.append(_broken(name, exc))
    return channels


def _public(url: str) -> str:
    """Scheme, host and port only: user info, path and query may hold secrets (Slack puts its token in the path)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _broken(name: str, error: NotifyConfigError) -> Channel:
    """A misconfigured channel fails when used, so the other channels still get the message."""
    def send(subject: str, body: str, payload: Mapping) -> None:
        raise error

    return Channel(name, send)


def _smtp_channel(env: Mapping[str, str], timeout: float) -> Channel:
    url = env["CRM_ALERT_SMTP_URL"]
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise NotifyConfigError(f"CRM_ALERT_SMTP_URL must be smtp://host[:port] or smtps://host[:port], got {_public(url)}")
    sender = env.get("CRM_ALERT_EMAIL_FROM", "").strip()
    recipients = [a.strip() for a in env.get("CRM_ALERT_EMAIL_TO", "").split(",") if a.strip()]
    if not sender or not recipients:
        raise NotifyConfigError("CRM_ALERT_SMTP_URL is set: CRM_ALERT_EMAIL_FROM and CRM_ALERT_EMAIL_TO are required too")
    starttls = parse_qs(parts.query).get("starttls", ["true"])[0].lower() not in ("false", "0", "no")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None

    def send(subject: str, body: str, payload: Mapping) -> None:
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = subject, sender, ", ".join(recipients)
        message.set_content(body + "\n\n" + json.dumps(payload, indent=2, default=str, sort_keys=True) + "\n")
        if parts.scheme == "smtps":
            client = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=timeout,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=timeout)
        with client:
            if parts.scheme == "smtp" and starttls:
                client.ehlo()
                if client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                elif user:
                    raise NotifyError("refusing to send SMTP credentials without STARTTLS (add ?starttls=false to allow)")
            if user:
                client.login(user, password or "")
            client.send_message(message)

    return Channel(f"smtp {_public(url)}", send)


def _webhook_channel(url: str, timeout: float) -> Channel:
    if urlsplit(url).scheme not in ("http", "https"):
        raise NotifyConfigError(f"CRM_ALERT_WEBHOOK_URL must be http(s)://..., got {_public(url)}")

    def send(subject: str, body: str, payload: Mapping) -> None:
        data = json.dumps({"subject": subject, "text": f"{subject}\n{body}", "body": body, "payload": payload},
                          default=str).encode()
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json", "User-Agent": "crm-pipeline"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # raises HTTPError on 4xx/5xx
            response.read()

    return Channel(f"webhook {_public(url)}", send)
